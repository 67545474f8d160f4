//! The timed benchmark: cycles of one burst per variant instance (order
//! rotating per cycle). CPU per request = the variant's Envoy CPU time over
//! its bursts (ns, from schedstat) / requests wrk completed in them; the
//! user-space part (utime ticks) is printed too: the filter runs in user
//! space, and kernel time (sockets) is most of Envoy's CPU and of its noise.
//! Throughput = median over cycles of the mean req/s of a variant's bursts;
//! ratios are also computed per cycle (paired). Each burst also measures the
//! CPU other processes used on the two cores (/proc/stat minus the bench's
//! own processes): a cycle in which that exceeds `--max-foreign` % in any
//! burst is logged and repeated, not counted (at most 3 x cycles run).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Bench, cpu, interval, load::Loader, log, median};
use crate::error::{Error, Result};

/// One burst's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Burst {
    ns: u64,
    uticks: u64,
    reqs: u64,
    rps: f64,
    foreign: f64,
}

/// Sums over bursts: CPU ns, user ticks, requests.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    ns: u64,
    uticks: u64,
    reqs: u64,
}

impl Sum {
    fn add(&mut self, b: &Burst) {
        self.ns += b.ns;
        self.uticks += b.uticks;
        self.reqs += b.reqs;
    }
}

fn burst(bench: &Bench, loader: &Loader, run: usize, hz: u64) -> Result<Burst> {
    let s = &bench.runs[run];
    let (idx, _) = bench.envoy_of[&s.name];
    let pid = bench.envoys[idx].pid();
    let up = bench.upstream.pid();
    let own = || cpu::ticks(pid) + cpu::ticks(up) + cpu::children_ticks();
    let (b0, o0, t0, u0) = (
        cpu::cores_busy(),
        own(),
        cpu::cpu_ns(pid),
        cpu::user_ticks(pid),
    );
    let host = s.variant.host(bench.args.mplb_host.as_deref());
    let w = loader.wrk(s.listen, &host, bench.args.conns, bench.args.burst)?;
    let (t1, u1, b1, o1) = (
        cpu::cpu_ns(pid),
        cpu::user_ticks(pid),
        cpu::cores_busy(),
        own(),
    );
    if w.non_2xx {
        return Err(Error::Load(format!(
            "{}: non-2xx responses\n{}\n{}",
            s.name,
            w.text,
            bench.envoys[idx].log_tail(30)
        )));
    }
    let foreign = (b1 - b0) as f64 - (o1 - o0) as f64;
    Ok(Burst {
        ns: t1.saturating_sub(t0),
        uticks: u1.saturating_sub(u0),
        reqs: w.requests,
        rps: w.rps,
        foreign: (foreign / (2 * hz * bench.args.burst) as f64 * 100.0)
            .max(0.0)
            .round(),
    })
}

fn us(ns: u64, reqs: u64) -> f64 {
    ns as f64 / 1e3 / reqs as f64
}

/// Run the cycles and print the tables.
pub fn run(bench: Bench) -> Result<()> {
    let hz = cpu::clk_tck();
    let a = &bench.args;
    let loader = Loader {
        prefix: super::pin_words(bench.nice, "1"),
        headers: super::headers(a),
    };
    let names: Vec<String> = bench.variants.iter().map(|v| v.name()).collect();
    let base = |run: usize| bench.runs[run].variant.name();
    let nv = bench.runs.len();
    let (mut clean, mut ran, mut disturbed) = (0u32, 0u32, 0u32);
    let mut total: BTreeMap<String, Sum> = BTreeMap::new();
    let mut per_instance = vec![Sum::default(); nv];
    let mut rps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut added: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut ptput: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut alt_diff = Vec::new();
    let mut cycles_txt = String::new();
    while clean < a.cycles && ran < 3 * a.cycles {
        ran += 1;
        let mut c_sum: BTreeMap<String, Sum> = BTreeMap::new();
        let mut c_rps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut c_inst = vec![Sum::default(); nv];
        let mut worst = 0.0f64;
        for i in 0..nv {
            bench.check_stop()?;
            let r = (i + ran as usize - 1) % nv; // order rotates per cycle
            let b = burst(&bench, &loader, r, hz)?;
            c_inst[r].add(&b);
            c_sum.entry(base(r)).or_default().add(&b);
            c_rps.entry(base(r)).or_default().push(b.rps);
            worst = worst.max(b.foreign);
        }
        let c_us: BTreeMap<&str, f64> = names
            .iter()
            .map(|n| (n.as_str(), us(c_sum[n].ns, c_sum[n].reqs)))
            .collect();
        let c_mean: BTreeMap<&str, f64> = names
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    (c_rps[n].iter().sum::<f64>() / c_rps[n].len() as f64).round(),
                )
            })
            .collect();
        let mut line = String::new();
        for n in &names {
            let _ = write!(
                line,
                " {n} {:.3} us {:.0}/s;",
                c_us[n.as_str()],
                c_mean[n.as_str()]
            );
        }
        if worst > f64::from(a.max_foreign) {
            disturbed += 1;
            log(&format!(
                "cycle {ran}: disturbed (other processes used up to {worst:.0}% of the cores), not counted:{line}"
            ));
            continue;
        }
        clean += 1;
        for n in &names {
            let _ = writeln!(cycles_txt, "{ran} {n} {} {}", c_sum[n].ns, c_sum[n].reqs);
            let t = total.entry(n.clone()).or_default();
            t.ns += c_sum[n].ns;
            t.uticks += c_sum[n].uticks;
            t.reqs += c_sum[n].reqs;
            rps.entry(n.clone()).or_default().push(c_mean[n.as_str()]);
            if n != "none" {
                added
                    .entry(n.clone())
                    .or_default()
                    .push(c_us[n.as_str()] - c_us["none"]);
                ptput
                    .entry(n.clone())
                    .or_default()
                    .push(c_mean[n.as_str()] / c_mean["none"] * 100.0);
            }
        }
        for (i, s) in c_inst.iter().enumerate() {
            per_instance[i].ns += s.ns;
            per_instance[i].uticks += s.uticks;
            per_instance[i].reqs += s.reqs;
        }
        if let Some(alt) = c_us.get("alt") {
            alt_diff.push(alt - c_us.get("mplb").copied().unwrap_or(*alt));
        }
        log(&format!(
            "cycle {ran} (clean {clean}, foreign <= {worst:.0}%):{line}"
        ));
    }
    if clean == 0 {
        return Err(Error::Load(format!(
            "no clean cycle in {ran}: the machine is busy (raise --max-foreign to count them)"
        )));
    }
    for (i, s) in bench.runs.iter().enumerate() {
        if s.variant.is_mplb() {
            let (_, admin) = bench.envoy_of[&s.name];
            let filter = format!("cluster.pod-p.{}\\.upstream_rq_total", s.suffix);
            let st = mplb_envoy_harness::admin::stats(admin, Some(&filter)).unwrap_or_default();
            let text: Vec<String> = st.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            log(&format!(
                "{} per-pod routes taken: {}",
                bench.runs[i].name,
                text.join(" ")
            ));
        }
    }
    print_report(
        &bench,
        &names,
        &total,
        &per_instance,
        &rps,
        &added,
        &ptput,
        &alt_diff,
        clean,
        disturbed,
        hz,
    );
    for line in interval::report(&interval::parse(&cycles_txt), &["mplb"]) {
        println!("{line}");
    }
    if let Some(f) = &a.cycles_out {
        std::fs::write(f, &cycles_txt).map_err(|e| Error::io("write", f, e))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    bench: &Bench,
    names: &[String],
    total: &BTreeMap<String, Sum>,
    per_instance: &[Sum],
    rps: &BTreeMap<String, Vec<f64>>,
    added: &BTreeMap<String, Vec<f64>>,
    ptput: &BTreeMap<String, Vec<f64>>,
    alt_diff: &[f64],
    clean: u32,
    disturbed: u32,
    hz: u64,
) {
    let a = &bench.args;
    let uptime = std::process::Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    // `1.40.0/Clean` out of Envoy's version line, as the script printed it.
    let line = mplb_envoy_harness::binary::version(&bench.envoy).unwrap_or_default();
    let version = line
        .split('/')
        .zip(line.split('/').skip(1))
        .find(|(_, b)| *b == "Clean")
        .map(|(a, _)| format!("{a}/Clean"))
        .unwrap_or(line.clone());
    println!();
    println!("uptime: {uptime}");
    println!(
        "nice {}; Envoy {version}; {clean} clean cycles of {}s bursts per variant instance, {} instances per variant, layout {} ({disturbed} disturbed ones not counted, MAX_FOREIGN={}%); {} connections; upstream: 3 hosts (svc round robin over them, pod-p0/p1/p2 one each)",
        bench.nice,
        a.burst,
        bench.instances,
        if bench.layout == super::Layout::Shared {
            "shared"
        } else {
            "separate"
        },
        a.max_foreign,
        a.conns
    );
    println!(
        "{:<26} {:>10} {:>12} {:>10} {:>9} {:>8} {:>12} {:>8} {:>9}",
        "variant",
        "requests",
        "us/req(sum)",
        "req/s(med)",
        "added",
        "x noop",
        "added(pair)",
        "x noop",
        "tput(pair)"
    );
    let us_of = |n: &str| us(total[n].ns, total[n].reqs);
    let uus_of = |n: &str| total[n].uticks as f64 / hz as f64 * 1e6 / total[n].reqs as f64;
    let an = us_of("noop") - us_of("none");
    let pan = median(&added["noop"]);
    let rn = median(&rps["none"]);
    for n in names {
        if n == "none" {
            println!(
                "{:<26} {:>10} {:>12.3} {:>10}",
                n,
                total[n].reqs,
                us_of(n),
                rn
            );
            continue;
        }
        let ad = us_of(n) - us_of("none");
        let pa = median(&added[n]);
        println!(
            "{:<26} {:>10} {:>12.3} {:>10} {:>+9.2} {:>8.2} {:>+12.2} {:>8.2} {:>8.1}%",
            n,
            total[n].reqs,
            us_of(n),
            median(&rps[n]),
            ad,
            if an > 0.0 { ad / an } else { 0.0 },
            pa,
            if pan > 0.0 { pa / pan } else { 0.0 },
            median(&ptput[n])
        );
    }
    println!(
        "added = us/req above no filter; x noop = added / noop's added; (pair) = median over cycles of the per-cycle figure"
    );
    let inst: Vec<String> = bench
        .runs
        .iter()
        .zip(per_instance)
        .map(|(r, s)| format!("{} {:.3}; ", r.name, us(s.ns, s.reqs)))
        .collect();
    println!("per instance us/req: {}", inst.concat());
    let inst: Vec<String> = bench
        .runs
        .iter()
        .zip(per_instance)
        .map(|(r, s)| {
            format!(
                "{} {:.2}; ",
                r.name,
                s.uticks as f64 / hz as f64 * 1e6 / s.reqs as f64
            )
        })
        .collect();
    println!("per instance user-space us/req: {}", inst.concat());
    let mut line = String::from("user-space us/req (added over none):");
    for n in names {
        let _ = write!(
            line,
            " {n} {:.2} ({:+.2});",
            uus_of(n),
            uus_of(n) - uus_of("none")
        );
    }
    println!("{line}");
    if !alt_diff.is_empty() {
        println!(
            "alt minus mplb: median per-cycle {} us/req",
            median(alt_diff)
        );
    }
    if total.contains_key("mplb") {
        let am = us_of("mplb") - us_of("none");
        println!(
            "totals:  added CPU/req noop {an:+.2} us, mplb {am:+.2} us -> mplb/noop {:.2} (target <= 2); mplb throughput {:.1}% of no filter (target >= 80%)",
            if an > 0.0 { am / an } else { 0.0 },
            median(&rps["mplb"]) / rn * 100.0
        );
        let (o, m) = (
            uus_of("noop") - uus_of("none"),
            uus_of("mplb") - uus_of("none"),
        );
        println!(
            "user:    added user-space CPU/req noop {o:+.2} us, mplb {m:+.2} us -> mplb/noop {:.2}",
            if o > 0.0 { m / o } else { 0.0 }
        );
        let pam = median(&added["mplb"]);
        println!(
            "paired:  median per-cycle added CPU/req noop {pan:+.2} us, mplb {pam:+.2} us -> mplb/noop {:.2}; median per-cycle mplb throughput {:.1}% of no filter",
            if pan > 0.0 { pam / pan } else { 0.0 },
            median(&ptput["mplb"])
        );
    }
}
