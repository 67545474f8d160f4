//! Load with `hey`: many workers at a low per-worker rate approximate a fixed
//! offered rate (hey is closed-loop per worker). hey starts all its workers at
//! once, so their rate tickers fire together: one hey would send the whole
//! second's requests in one burst. The lab therefore runs `shards` hey
//! processes with an equal share of the workers, started evenly spread over
//! one ticker period, so arrivals come in small groups at a steady pace.
//! Their CSVs give per-request latency and status.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::procs::Proc;

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The URL hey requests (a gateway's listener).
    pub url: String,
    /// `Host` header (the service authority).
    pub host: String,
    /// Offered rate over all shards, in requests per second.
    pub rate: f64,
    /// How long each shard sends (hey's `-z`).
    pub duration: Duration,
    /// Per-worker rate; workers = rate / this.
    pub per_worker_rate: f64,
    /// hey processes, started spread over one ticker period.
    pub shards: u64,
}

impl LoadSpec {
    fn shards(&self) -> u64 {
        self.shards.max(1)
    }

    /// Workers over all shards (a multiple of the shard count).
    pub fn workers(&self) -> u64 {
        let w = ((self.rate / self.per_worker_rate).ceil() as u64).max(1);
        w.div_ceil(self.shards()) * self.shards()
    }

    /// Time between two requests of one worker.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(self.workers() as f64 / self.rate.max(1e-9))
    }

    /// The hey command line of one shard.
    pub fn command(&self, hey: &Path) -> Command {
        let workers = self.workers() / self.shards();
        let per_worker = self.rate / self.workers() as f64;
        let mut cmd = Command::new(hey);
        cmd.arg("-z")
            .arg(format!("{}ms", self.duration.as_millis()))
            .arg("-c")
            .arg(workers.to_string())
            .arg("-q")
            .arg(format!("{per_worker:.4}"))
            .arg("-t")
            .arg("10")
            .arg("-host")
            .arg(&self.host)
            .arg("-o")
            .arg("csv")
            .arg(&self.url);
        cmd
    }
}

/// A running sharded load; dropping it kills every shard.
pub struct LoadRun {
    shards: Vec<Proc>,
}

/// Start the shards of `spec`, spread over one ticker period; their CSVs
/// land in `<log_dir>/<name>-<i>.log`.
/// Each shard joins the cgroups of `cgroup_procs` (may be empty).
pub async fn start(
    hey: &Path,
    spec: &LoadSpec,
    name: &str,
    log_dir: &Path,
    cgroup_procs: &[PathBuf],
) -> Result<LoadRun> {
    let n = spec.shards();
    let gap = spec.period() / n as u32;
    let mut shards = Vec::new();
    for i in 0..n {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let shard = format!("{name}-{i}");
        shards.push(Proc::spawn_in(
            &shard,
            spec.command(hey),
            log_dir,
            cgroup_procs,
        )?);
    }
    Ok(LoadRun { shards })
}

impl LoadRun {
    /// Is any shard still running?
    pub fn alive(&mut self) -> bool {
        self.shards.iter_mut().any(Proc::alive)
    }

    /// Wait for every shard to finish.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        for s in &mut self.shards {
            s.wait_exit(timeout).await?;
        }
        Ok(())
    }

    /// Stop every shard now.
    pub fn kill(&mut self) {
        for s in &mut self.shards {
            s.kill();
        }
    }

    /// All shards' CSV output, concatenated.
    pub fn output(&self) -> Result<String> {
        let mut text = String::new();
        for s in &self.shards {
            text.push_str(
                &std::fs::read_to_string(&s.log).map_err(|e| Error::io("read", &s.log, e))?,
            );
            text.push('\n');
        }
        Ok(text)
    }
}

/// Figures from one load run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct LoadResult {
    /// The rate asked for (a schedule's time-weighted mean), in requests per second.
    pub offered_rps: f64,
    /// 2xx responses per second of the load's duration.
    pub achieved_rps: f64,
    /// Rows in hey's CSV (every request, any status).
    pub requests: u64,
    /// Requests answered with a status outside 200..300 (shed by an
    /// admitting gateway, or failed).
    pub non_2xx: u64,
    /// Median latency of the 2xx responses, in milliseconds (nearest rank).
    pub p50_ms: f64,
    /// 99th-percentile latency of the 2xx responses, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th-percentile latency of the 2xx responses, in milliseconds.
    pub p999_ms: f64,
    /// Mean latency of the 2xx responses, in milliseconds (0 with none).
    pub mean_ms: f64,
}

/// Parse hey's CSV (`response-time,...,status-code,offset`). `requests`
/// and `non_2xx` count every row; the latencies are over the 2xx rows only:
/// a request the gateway shed is answered at once with a 503, and counting
/// it would make the tails look better than what served requests saw.
pub fn parse_csv(text: &str, offered_rps: f64, duration: Duration) -> Result<LoadResult> {
    // Several shards' CSVs may be concatenated: every header is skipped.
    let mut lines = text.lines().skip_while(|l| !l.starts_with("response-time"));
    let header = lines
        .next()
        .ok_or_else(|| Error::Load("no CSV header in hey output".into()))?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::Load(format!("hey CSV lacks column {name}")))
    };
    let (rt, st) = (col("response-time")?, col("status-code")?);
    let mut lat = Vec::new();
    let (mut requests, mut non_2xx) = (0, 0);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(t), Some(s)) = (f.get(rt), f.get(st)) else {
            continue;
        };
        let (Ok(t), Ok(s)) = (t.parse::<f64>(), s.parse::<u16>()) else {
            continue;
        };
        requests += 1;
        if (200..300).contains(&s) {
            lat.push(t * 1000.0);
        } else {
            non_2xx += 1;
        }
    }
    let secs = duration.as_secs_f64().max(1e-9);
    lat.sort_by(f64::total_cmp);
    Ok(LoadResult {
        offered_rps,
        achieved_rps: lat.len() as f64 / secs,
        requests,
        non_2xx,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        p999_ms: percentile(&lat, 0.999),
        mean_ms: if lat.is_empty() {
            0.0
        } else {
            lat.iter().sum::<f64>() / lat.len() as f64
        },
    })
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Find hey: `--hey`, `$MPLB_HEY`, PATH.
pub fn find_hey(flag: Option<PathBuf>) -> Result<PathBuf> {
    flag.or_else(|| std::env::var_os("MPLB_HEY").map(PathBuf::from))
        .or_else(|| crate::procs::which("hey"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            Error::Precondition("hey not found; run `. scripts/setup.sh` (apt hey)".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_gives_percentiles_rate_and_non_2xx() {
        let mut csv = String::from(
            "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n",
        );
        for i in 1..=1000 {
            let status = if i == 500 { 503 } else { 200 };
            csv.push_str(&format!(
                "{:.4},0,0,0,0,0,{status},0.1\n",
                i as f64 / 1000.0
            ));
        }
        let r = parse_csv(&csv, 110.0, Duration::from_secs(10)).unwrap();
        assert_eq!(r.requests, 1000);
        assert_eq!(r.non_2xx, 1);
        assert!((r.achieved_rps - 99.9).abs() < 1e-9);
        // Over the 999 2xx rows (1..=999 ms without 500): ranks 500, 990, 999.
        assert!((r.p50_ms - 501.0).abs() < 1e-6);
        assert!((r.p99_ms - 991.0).abs() < 1e-6);
        assert!((r.p999_ms - 1000.0).abs() < 1e-6);
        assert!((r.mean_ms - (500_500.0 - 500.0) / 999.0).abs() < 1e-6);
    }

    #[test]
    fn fast_503s_do_not_lower_the_served_tails() {
        // 100 served requests at 1..=100 ms, then 900 shed at once (1 ms 503s):
        // over all rows p99 would be 90 ms; over the served ones it is 99 ms.
        let mut all: Vec<f64> = (1..=100).map(f64::from).chain([1.0; 900]).collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(percentile(&all, 0.99), 90.0);
        let mut csv = String::from(
            "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n",
        );
        for i in 1..=100 {
            csv.push_str(&format!("{:.4},0,0,0,0,0,200,0.1\n", i as f64 / 1000.0));
        }
        for _ in 0..900 {
            csv.push_str("0.0010,0,0,0,0,0,503,0.1\n");
        }
        let r = parse_csv(&csv, 100.0, Duration::from_secs(1)).unwrap();
        assert_eq!((r.requests, r.non_2xx), (1000, 900));
        assert!((r.achieved_rps - 100.0).abs() < 1e-9);
        assert!((r.p50_ms - 50.0).abs() < 1e-6);
        assert!((r.p99_ms - 99.0).abs() < 1e-6);
        assert!((r.p999_ms - 100.0).abs() < 1e-6);
        assert!((r.mean_ms - 50.5).abs() < 1e-6);
    }

    #[test]
    fn only_non_2xx_rows_give_zero_latencies() {
        let csv = "response-time,status-code\n0.0020,503\n0.0030,500\n";
        let r = parse_csv(csv, 2.0, Duration::from_secs(1)).unwrap();
        assert_eq!((r.requests, r.non_2xx), (2, 2));
        assert_eq!((r.achieved_rps, r.p99_ms, r.mean_ms), (0.0, 0.0, 0.0));
    }

    #[test]
    fn concatenated_shard_csvs_are_merged() {
        let one = "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n\
                   0.0010,0,0,0,0,0,200,0.1\n";
        let two = format!("{one}\n{one}0.0030,0,0,0,0,0,502,0.2\n");
        let r = parse_csv(&two, 3.0, Duration::from_secs(1)).unwrap();
        assert_eq!(r.requests, 3);
        assert_eq!(r.non_2xx, 1);
        // The 502 (3 ms) is not a served request's latency.
        assert!((r.p999_ms - 1.0).abs() < 1e-9);
        assert!((r.achieved_rps - 2.0).abs() < 1e-9);
    }

    #[test]
    fn missing_header_is_an_error() {
        assert!(parse_csv("garbage", 1.0, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn command_spreads_the_rate_over_workers() {
        let spec = LoadSpec {
            url: "http://127.0.0.1:1/".into(),
            host: "frontend".into(),
            rate: 350.0,
            duration: Duration::from_secs(20),
            per_worker_rate: 2.0,
            shards: 10,
        };
        // 175 workers rounded up to 180 over 10 shards, each at 350/180 req/s.
        assert_eq!(spec.workers(), 180);
        assert!((spec.period().as_secs_f64() - 180.0 / 350.0).abs() < 1e-9);
        let cmd = spec.command(Path::new("hey"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..6], ["-z", "20000ms", "-c", "18", "-q", "1.9444"]);
    }
}
