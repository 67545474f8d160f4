//! Command line and environment (every flag also `MPLB_...`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mplb_wire::Mode;

use crate::admission::AdmissionConfig;
use crate::engine::EngineConfig;
use crate::policy::PolicyKind;
use crate::policy::optimal::{OptimalConfig, SolverKind};
use crate::weights::WeightsConfig;
use crate::{Error, Result};

#[derive(Debug, Parser)]
#[command(name = "weight-server", version, about = "multiparty-lb weight server")]
/// The command line: a subcommand, or the server's flags.
pub struct Cli {
    #[command(subcommand)]
    /// A command besides serving, if any.
    pub command: Option<Command>,
    #[command(flatten)]
    /// Flags of the server (the default action).
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
/// Commands besides serving.
pub enum Command {
    /// Print the Istio YAML that routes the filter's headers.
    RenderIstio(RenderArgs),
}

/// Flags of the server (the default action).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MPLB_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// `kube` (watch the API server) or a topology file (YAML or JSON).
    #[arg(long, env = "MPLB_TOPOLOGY")]
    pub topology: Option<String>,
    /// Initial policy (a persisted admin state wins).
    #[arg(long, env = "MPLB_POLICY", default_value_t = PolicyKind::Optimal)]
    pub policy: PolicyKind,
    /// How the `optimal` policy solves its stages: `flow` (exact max-flow,
    /// scales to thousands of nodes) or `clarabel` (the stage LPs, interior
    /// point; slow when services have few pods across many nodes).
    #[arg(long, env = "MPLB_OPTIMAL_SOLVER", value_enum, default_value_t = SolverKind::Flow)]
    pub optimal_solver: SolverKind,
    /// Where the admin state is persisted (none: in memory only).
    #[arg(long, env = "MPLB_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// File holding the bearer token admin mutations need.
    #[arg(long, env = "MPLB_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Allow admin mutations without a token (local use only).
    #[arg(long, env = "MPLB_INSECURE_ADMIN")]
    pub insecure_admin: bool,
    /// Accept host reports without a token (local and lab modes only).
    /// Otherwise `--topology kube` checks each report's ServiceAccount token
    /// by TokenReview, and a topology file refuses every report.
    #[arg(long, env = "MPLB_INSECURE_REPORTS")]
    pub insecure_reports: bool,
    /// Audience host agents' tokens must carry.
    #[arg(long, env = "MPLB_REPORT_AUDIENCE", default_value = crate::auth::DEFAULT_AUDIENCE)]
    pub report_audience: String,
    /// The one ServiceAccount (`namespace:name`) that may post reports.
    #[arg(long, env = "MPLB_REPORT_ACCOUNT", default_value = crate::auth::DEFAULT_AGENT_ACCOUNT)]
    pub report_account: String,
    /// Time between recompute rounds.
    #[arg(long, env = "MPLB_RECOMPUTE_INTERVAL", default_value = "1s")]
    pub recompute_interval: humantime::Duration,
    /// When > 0, a host report triggers a round no sooner than this after
    /// the last one (the reports of one interval coalesce), so a node's CPU
    /// change reaches the table without waiting for the interval; only for
    /// a policy whose decisions are undamped (`optimal`): `spare` damps per
    /// round and keeps the interval. `0s`: rounds on the interval (and admin
    /// or topology changes) only.
    #[arg(long, env = "MPLB_REPORT_DEBOUNCE", default_value = "250ms")]
    pub report_debounce: humantime::Duration,
    /// Admission, with the `optimal` policy: when the tenants' demand exceeds
    /// this fraction of the nodes' capacity (in (0, 1]), entry gateways (the
    /// filter's plugin key `admission`) let in only part of each over-share
    /// tenant's requests and answer the rest with a 503, so the admitted
    /// load fits and is split by fair share. Absent: off.
    #[arg(long, env = "MPLB_ADMISSION_TARGET")]
    pub admission_target: Option<f64>,
    /// The smallest fraction of a tenant's requests admission lets in, in (0, 1].
    #[arg(long, env = "MPLB_ADMISSION_FLOOR", default_value_t = 0.05)]
    pub admission_floor: f64,
    /// Least time between two moves of the admission fractions: at least a
    /// filter poll plus a host-agent interval, so a move's effect shows in
    /// the reports before the next.
    #[arg(long, env = "MPLB_ADMISSION_PERIOD", default_value = "2s")]
    pub admission_period: humantime::Duration,
    /// Calibrate `optimal`'s weights by each pod's measured cost per
    /// request (its share of the service's CPU over its share of the
    /// requests): a pod whose requests cost more gets fewer for the same
    /// planned CPU. Off by default (experimental).
    #[arg(long, env = "MPLB_OPTIMAL_CALIBRATE")]
    pub optimal_calibrate: bool,
    /// Half-life of the CPU EWMA.
    #[arg(long, env = "MPLB_EWMA_HALF_LIFE", default_value = "3s")]
    pub ewma_half_life: humantime::Duration,
    /// A host report whose node use is further than this fraction of the
    /// node's capacity from the smoothed use (a hog started or stopped, a
    /// load step) resets the node's averages to the report, so the policy
    /// sees the change at once; smaller moves stay smoothed. In [0, 1];
    /// 0: always smooth.
    #[arg(long, env = "MPLB_EWMA_RESET_STEP", default_value_t = 0.2)]
    pub ewma_reset_step: f64,
    /// A node whose last report is older than this is unknown.
    #[arg(long, env = "MPLB_REPORT_MAX_AGE", default_value = "10s")]
    pub report_max_age: humantime::Duration,
    /// Fraction of the way to the target moved per round, in (0, 1]
    /// (`optimal` is not damped: its target does not follow the split).
    #[arg(long, env = "MPLB_DAMPING", default_value_t = 0.5)]
    pub damping: f64,
    /// A weight change below this is not a change (no new version).
    #[arg(long, env = "MPLB_DEAD_BAND", default_value_t = 0.02)]
    pub dead_band: f64,
    /// The table's time-to-live.
    #[arg(long, env = "MPLB_TABLE_TTL", default_value = "30s")]
    pub table_ttl: humantime::Duration,
    /// Suffix of service FQDNs.
    #[arg(long, env = "MPLB_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Label selector of managed pods (kube topology).
    #[arg(
        long,
        env = "MPLB_MANAGED_LABEL",
        default_value = "mplb.io/managed=true"
    )]
    pub managed_label: String,
    /// Namespaces to watch, comma-separated (kube topology; empty: all).
    #[arg(long, env = "MPLB_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Tokio worker threads (default: one per core).
    #[arg(long, env = "MPLB_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "MPLB_LOG_JSON")]
    pub log_json: bool,
    /// Leader election among replicas (`--leader-elect` and its timing).
    #[command(flatten)]
    pub leader: crate::leader::LeaderArgs,
}

/// `render-istio` routes for the filter's mode (`subset`: DestinationRule
/// subsets + VirtualService header matches; `session`: the Service label
/// for Istio's persistent session header; `override`: the override-host
/// Lua extension after the filter).
impl From<Mode> for crate::render::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Subset => crate::render::Mode::Subset,
            Mode::Session => crate::render::Mode::Session,
            Mode::Override => crate::render::Mode::Override,
        }
    }
}

#[derive(Debug, Clone, Args)]
/// Flags of `render-istio`.
pub struct RenderArgs {
    /// Topology file (YAML or JSON).
    #[arg(long, env = "MPLB_TOPOLOGY")]
    pub topology: PathBuf,
    #[arg(long, env = "MPLB_RENDER_MODE", value_enum, default_value_t = Mode::Subset)]
    /// How the rendered objects route: the filter's mode.
    pub mode: Mode,
    /// Header the filter stamps with the pod name.
    #[arg(long, env = "MPLB_HEADER", default_value = "x-lb-endpt")]
    pub header: String,
    /// Header of session mode.
    #[arg(long, env = "MPLB_SESSION_HEADER", default_value = "x-lb-session")]
    pub session_header: String,
    #[arg(long, env = "MPLB_CLUSTER_DOMAIN", default_value = "cluster.local")]
    /// Suffix of service FQDNs.
    pub cluster_domain: String,
}

fn ms(d: humantime::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ServeArgs {
    /// Check ranges and build the engine's tunables.
    pub fn engine_config(&self) -> Result<EngineConfig> {
        if !(self.damping > 0.0 && self.damping <= 1.0) {
            return Err(Error::Config(format!(
                "--damping {} is not in (0, 1]",
                self.damping
            )));
        }
        if !(self.dead_band >= 0.0 && self.dead_band < 1.0) {
            return Err(Error::Config(format!(
                "--dead-band {} is not in [0, 1)",
                self.dead_band
            )));
        }
        if !(0.0..=1.0).contains(&self.ewma_reset_step) {
            return Err(Error::Config(format!(
                "--ewma-reset-step {} is not in [0, 1]",
                self.ewma_reset_step
            )));
        }
        let admission = match self.admission_target {
            None => None,
            Some(target) => {
                for (flag, v) in [
                    ("--admission-target", target),
                    ("--admission-floor", self.admission_floor),
                ] {
                    if !(v > 0.0 && v <= 1.0) {
                        return Err(Error::Config(format!("{flag} {v} is not in (0, 1]")));
                    }
                }
                Some(AdmissionConfig {
                    target,
                    floor: self.admission_floor,
                    period_ms: ms(self.admission_period),
                    ..AdmissionConfig::default()
                })
            }
        };
        if ms(self.table_ttl) == 0 || self.recompute_interval.is_zero() {
            return Err(Error::Config(
                "--table-ttl and --recompute-interval must be > 0".into(),
            ));
        }
        Ok(EngineConfig {
            weights: WeightsConfig {
                damping: self.damping,
                dead_band: self.dead_band,
                ttl_ms: ms(self.table_ttl),
            },
            ewma_half_life_ms: ms(self.ewma_half_life),
            ewma_reset_step: self.ewma_reset_step,
            report_max_age_ms: ms(self.report_max_age),
            report_debounce_ms: Some(ms(self.report_debounce)).filter(|d| *d > 0),
            admission,
            calibration: self
                .optimal_calibrate
                .then(crate::calibration::CalibrationConfig::default),
            optimal: OptimalConfig {
                solver: self.optimal_solver,
                ..OptimalConfig::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let cli = Cli::try_parse_from(["weight-server", "--topology", "t.yaml"]).unwrap();
        let c = cli.serve.engine_config().unwrap();
        assert_eq!(c.weights.ttl_ms, 30_000);
        assert_eq!(c.ewma_half_life_ms, 3_000);
        assert_eq!(c.ewma_reset_step, 0.2);
        let nan = Cli::try_parse_from(["weight-server", "--ewma-reset-step", "NaN"]).unwrap();
        assert!(nan.serve.engine_config().is_err());
        let off = Cli::try_parse_from(["weight-server", "--ewma-reset-step", "0"]).unwrap();
        assert_eq!(off.serve.engine_config().unwrap().ewma_reset_step, 0.0);
        assert_eq!(c.report_debounce_ms, Some(250));
        let off = Cli::try_parse_from(["weight-server", "--report-debounce", "0s"]).unwrap();
        assert_eq!(off.serve.engine_config().unwrap().report_debounce_ms, None);
        assert_eq!(cli.serve.listen.port(), 8080);
        assert_eq!(c.optimal.solver, SolverKind::Flow);
        let lp = Cli::try_parse_from(["weight-server", "--optimal-solver", "clarabel"]).unwrap();
        assert_eq!(
            lp.serve.engine_config().unwrap().optimal.solver,
            SolverKind::Clarabel
        );
        assert!(Cli::try_parse_from(["weight-server", "--optimal-solver", "simplex"]).is_err());
        let bad = Cli::try_parse_from(["weight-server", "--damping", "0"]).unwrap();
        assert!(bad.serve.engine_config().is_err());
        assert_eq!(c.admission, None, "admission is off unless asked for");
        assert_eq!(c.calibration, None, "calibration is off unless asked for");
        let cal = Cli::try_parse_from(["weight-server", "--optimal-calibrate"]).unwrap();
        assert!(cal.serve.engine_config().unwrap().calibration.is_some());
        let on = Cli::try_parse_from(["weight-server", "--admission-target", "0.9"]).unwrap();
        let a = on.serve.engine_config().unwrap().admission.unwrap();
        assert_eq!((a.target, a.floor, a.period_ms), (0.9, 0.05, 2_000));
        for bad in [
            vec!["weight-server", "--admission-target", "1.2"],
            vec!["weight-server", "--admission-target", "0"],
            vec![
                "weight-server",
                "--admission-target",
                "0.9",
                "--admission-floor",
                "NaN",
            ],
        ] {
            let err = Cli::try_parse_from(&bad).unwrap().serve.engine_config();
            assert!(
                err.unwrap_err().to_string().contains("--admission"),
                "{bad:?}"
            );
        }
        let r = Cli::try_parse_from([
            "weight-server",
            "render-istio",
            "--topology",
            "x",
            "--mode",
            "session",
        ])
        .unwrap();
        assert!(matches!(
            r.command,
            Some(Command::RenderIstio(RenderArgs {
                mode: Mode::Session,
                ..
            }))
        ));
    }
}
