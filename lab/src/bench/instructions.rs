//! `--instructions`: Envoy's user-space instructions per request under
//! valgrind (callgrind) instead of timing. Each variant's Envoy is
//! restarted under valgrind on its own configuration, warmed up
//! (`--warm`), then counted over two windows of `--count-seconds` each:
//! under load (wrk, 4 connections) and at a trickle (curl, `--trickle-rps`:
//! above the filter's sample budget per pod, so the sampled responses are
//! per-second work in both windows). Requests come from the Envoy's own
//! downstream_rq_total. Per request = the slope between the two windows,
//! (loaded - trickle) / (their request difference): what runs per second
//! (Envoy's timers, the filter's tick, poll and stats flush) is in both
//! windows and cancels out. The gross figure (loaded / requests) and the
//! per-second cost are printed too. Counts repeat within about 1 % from run
//! to run, but they weigh every instruction alike: a cache miss or a kernel
//! call costs nothing here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Bench, load::Loader, log};
use crate::error::{Error, Result};

fn callgrind_control(flag: &[&str], pid: u32) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args(flag)
        .arg(pid.to_string())
        .output()
        .map_err(|e| Error::Precondition(format!("callgrind_control: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Load(format!(
            "callgrind_control {flag:?} {pid} failed"
        )))
    }
}

/// Sum of the `summary:` lines of the dumps `cg.<pid>.*` in `dir`; with
/// `keep`, each is copied to `keep.0` (the directory, the file name) first.
fn dumped(dir: &Path, pid: u32, keep: Option<(&Path, &str)>, delete: bool) -> Result<u64> {
    let prefix = format!("cg.{pid}.");
    let mut total = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        total += text
            .lines()
            .filter_map(|l| l.strip_prefix("summary:"))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>();
        if let Some((to, name)) = keep {
            std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
            std::fs::copy(e.path(), to.join(name))
                .map_err(|err| Error::io("copy", e.path(), err))?;
        }
        if delete {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(total)
}

/// Per-request (slope), gross and fixed-per-second instructions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Slope between the loaded and the trickle window.
    pub per_request: i64,
    /// Loaded window / its requests.
    pub gross: i64,
    /// What the trickle window spent besides its requests, per second.
    pub fixed_per_s: i64,
}

/// The figures from the windows' counts: `ir` over `n` requests loaded,
/// `slow` over `nt` requests at a trickle, each window `secs` long.
pub fn counts(ir: u64, n: u64, slow: u64, nt: u64, secs: u64) -> Counts {
    let gross = (ir as f64 / n as f64).round();
    let per = ((ir as f64 - slow as f64) / (n as f64 - nt as f64)).round();
    let fixed = ((slow as f64 - per * nt as f64) / secs as f64).round();
    Counts {
        per_request: per as i64,
        gross: gross as i64,
        fixed_per_s: fixed as i64,
    }
}

/// Count every variant instance and print the table.
pub fn run(mut bench: Bench) -> Result<()> {
    if crate::procs::which("valgrind").is_none() {
        return Err(Error::Precondition(
            "valgrind missing: run scripts/setup.sh".into(),
        ));
    }
    let bin = mplb_envoy_harness::real_binary(&bench.envoy)
        .map_err(|e| Error::Precondition(e.to_string()))?;
    let a = bench.args.clone();
    let loader = Loader {
        prefix: vec!["taskset".into(), "-c".into(), "1".into()],
        headers: super::headers(&a),
    };
    let work = bench.work.path().to_path_buf();
    let mut per_run: Vec<(String, Counts)> = Vec::new();
    for s in bench.runs.clone() {
        bench.check_stop()?;
        let (idx, admin) = bench.envoy_of[&s.name];
        bench.envoys[idx].stop();
        let mut l = bench.launches[idx].clone();
        l.binary = bin.clone();
        l.base_id = Some(u32::from(s.listen.port()));
        l.prefix = [
            "taskset",
            "-c",
            "0",
            "valgrind",
            "--tool=callgrind",
            "--smc-check=all-non-file",
            "--instr-atstart=no",
        ]
        .iter()
        .map(Into::into)
        .collect();
        l.prefix
            .push(format!("--callgrind-out-file={}/cg.%p", work.display()).into());
        let safe = s.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut vg = l
            .spawn(&work.join(format!("vg-{safe}.log")))
            .map_err(|e| Error::Precondition(e.to_string()))?;
        vg.wait_ready(admin, Duration::from_secs(300))
            .map_err(|e| Error::Timeout(e.to_string()))?;
        let pid = vg.pid();
        let key = format!("http.lb{}.downstream_rq_total", s.suffix);
        let rq = || -> Result<u64> {
            let st = mplb_envoy_harness::admin::stats(
                admin,
                Some(&format!("^{}$", key.replace('.', "\\."))),
            )
            .map_err(|e| Error::Load(e.to_string()))?;
            st.get(&key)
                .copied()
                .ok_or_else(|| Error::Load(format!("no {key} in {admin}/stats")))
        };
        let host = s.variant.host(a.mplb_host.as_deref());
        callgrind_control(&["-i", "on"], pid)?;
        loader.wrk(s.listen, &host, 4, a.warm)?;
        callgrind_control(&["-z"], pid)?;
        bench.check_stop()?;
        let r0 = rq()?;
        let w = loader.wrk(s.listen, &host, 4, a.count_seconds)?;
        let r1 = rq()?;
        if w.non_2xx {
            return Err(Error::Load(format!("{}: non-2xx responses", s.name)));
        }
        callgrind_control(&["-d"], pid)?;
        std::thread::sleep(Duration::from_secs(1));
        let keep = |w: &str| a.cg_out.as_deref().map(|d| (d, format!("{safe}.{w}")));
        let k = keep("loaded");
        let ir = dumped(&work, pid, k.as_ref().map(|(d, n)| (*d, n.as_str())), true)?;
        callgrind_control(&["-z"], pid)?;
        let t0 = rq()?;
        loader.trickle(
            s.listen,
            &host,
            a.trickle_rps,
            a.count_seconds * u64::from(a.trickle_rps),
        )?;
        let t1 = rq()?;
        callgrind_control(&["-d"], pid)?;
        std::thread::sleep(Duration::from_secs(1));
        let k = keep("trickle");
        let slow = dumped(&work, pid, k.as_ref().map(|(d, n)| (*d, n.as_str())), false)?;
        vg.stop();
        let (n, nt) = (r1 - r0, t1 - t0);
        let c = counts(ir, n, slow, nt, a.count_seconds);
        log(&format!(
            "{}: {n} requests, {} instructions per request ({} by the slope to {nt} requests at a trickle; fixed {} per second)",
            s.name, c.gross, c.per_request, c.fixed_per_s
        ));
        per_run.push((s.variant.name(), c));
    }
    let vg_version = Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!();
    println!(
        "{vg_version}; Envoy user-space instructions (callgrind Ir), {}s of load after {}s warm-up, 4 connections, then {}s at {} requests/s",
        a.count_seconds, a.warm, a.count_seconds, a.trickle_rps
    );
    // Per variant: the mean over its instances (integer division, as before).
    let mut by: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for (v, c) in &per_run {
        let e = by.entry(v.clone()).or_default();
        *e = (
            e.0 + c.per_request,
            e.1 + c.gross,
            e.2 + c.fixed_per_s,
            e.3 + 1,
        );
    }
    let mean = |v: &str| {
        by.get(v)
            .map(|e| (e.0 / e.3, e.1 / e.3, e.2 / e.3))
            .unwrap_or_default()
    };
    println!(
        "per request = slope between the loaded and the trickle window; gross = loaded / requests (under valgrind, a few hundred requests per second, work done per second weighs ~50x more per request than at full speed); fixed/s = what the trickle window spent besides its requests"
    );
    println!(
        "{:<26} {:>12} {:>9} {:>7}   {:>12} {:>9} {:>7}   fixed instr/s",
        "variant", "per-request", "added", "x noop", "gross", "added", "x noop"
    );
    let (mnone, inone, _) = mean("none");
    let (mnoop, inoop, _) = mean("noop");
    let ratio = |a: i64, b: i64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    for v in bench.variants.iter().map(|v| v.name()) {
        let (m, i, bg) = mean(&v);
        let (ad, g) = (m - mnone, i - inone);
        println!(
            "{:<26} {:>12} {:>+9} {:>7.2}   {:>12} {:>+9} {:>7.2}   {}",
            v,
            m,
            ad,
            ratio(ad, mnoop - mnone),
            i,
            g,
            ratio(g, inoop - inone),
            bg
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_cancels_per_second_work() {
        // 1,000 instructions per request, 50,000 per second, 10 s windows.
        let c = counts(1000 * 2000 + 500_000, 2000, 1000 * 500 + 500_000, 500, 10);
        assert_eq!(c.per_request, 1000);
        assert_eq!(c.fixed_per_s, 50_000);
        assert_eq!(c.gross, 1250);
    }

    #[test]
    fn dumps_are_summed_kept_and_deleted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let keep = dir.path().join("keep");
        std::fs::write(dir.path().join("cg.42.1"), "events: Ir\nsummary: 100\n")
            .unwrap_or_default();
        std::fs::write(dir.path().join("cg.42.2"), "summary: 23\n").unwrap_or_default();
        std::fs::write(dir.path().join("cg.43.1"), "summary: 1000\n").unwrap_or_default();
        assert_eq!(
            dumped(dir.path(), 42, Some((&keep, "mplb.loaded")), true).ok(),
            Some(123)
        );
        assert!(keep.join("mplb.loaded").exists());
        assert_eq!(dumped(dir.path(), 42, None, false).ok(), Some(0));
        assert_eq!(dumped(dir.path(), 43, None, false).ok(), Some(1000));
    }
}
