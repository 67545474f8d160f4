//! The benchmark's knobs: flags that also read the old script's environment variables.

use std::path::PathBuf;

/// How the Envoys under test are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// One Envoy per instance number, serving every variant on its own listener.
    Shared,
    /// Each instance of each variant in an Envoy of its own.
    Separate,
}

/// The benchmark's knobs.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds per burst.
    #[arg(long, env = "BURST", default_value_t = 1)]
    pub burst: u64,
    /// Clean cycles to count.
    #[arg(long, env = "CYCLES", default_value_t = 20)]
    pub cycles: u32,
    /// Instances of each variant (default 3; 1 with --instructions).
    #[arg(long, env = "INSTANCES")]
    pub instances: Option<u32>,
    /// Layout of the Envoys under test (default shared; separate with --instructions).
    #[arg(long, env = "LAYOUT", value_enum)]
    pub layout: Option<Layout>,
    /// wrk connections per burst.
    #[arg(long, env = "CONNS", default_value_t = 32)]
    pub conns: u32,
    /// Niceness of Envoy, wrk and the upstream (default -10 as root, else 0).
    #[arg(long, env = "NICE", allow_hyphen_values = true)]
    pub nice: Option<i32>,
    /// A cycle in which other processes used more than this % of the two cores is repeated.
    #[arg(long, env = "MAX_FOREIGN", default_value_t = 5)]
    pub max_foreign: u32,
    /// Variants besides none and noop (none noop mplb nobody nomatch alt probe:<s+s> rawprobe:<s+s>).
    #[arg(long, env = "VARIANTS", default_value = "none noop mplb")]
    pub variants: String,
    /// Pods in the table's service (at least 3): past p0-p2 (60/30/10, each
    /// with its per-pod route), pods of weight 0.001 each, which the filter
    /// indexes and searches like any other but picks for about 1 % of
    /// requests (to the service route): the filter's cost as the service
    /// grows, with Envoy's routes and upstreams unchanged.
    #[arg(long, env = "TABLE_PODS", default_value_t = 3)]
    pub table_pods: u32,
    /// Host of the mplb variant's load (e.g. one not in the table).
    #[arg(long, env = "MPLB_HOST")]
    pub mplb_host: Option<String>,
    /// Keep the per-cycle CPU and requests ("cycle variant ns reqs") in this file.
    #[arg(long, env = "CYCLES_OUT")]
    pub cycles_out: Option<PathBuf>,
    /// Print the bootstrap interval of these pooled cycle files and exit.
    #[arg(long, num_args = 1..)]
    pub pool: Vec<PathBuf>,
    /// Count instructions per request under valgrind instead of timing.
    #[arg(long, env = "INSTRUCTIONS", value_parser = clap::builder::BoolishValueParser::new())]
    pub instructions: bool,
    /// Warm-up seconds under valgrind.
    #[arg(long, env = "WARM", default_value_t = 15)]
    pub warm: u64,
    /// Seconds of each counted window under valgrind.
    #[arg(long, env = "COUNT_SECONDS", default_value_t = 20)]
    pub count_seconds: u64,
    /// Requests per second of the trickle window.
    #[arg(long, env = "TRICKLE_RPS", default_value_t = 50)]
    pub trickle_rps: u32,
    /// Keep each window's callgrind file in this directory.
    #[arg(long, env = "CG_OUT")]
    pub cg_out: Option<PathBuf>,
    /// Send every request with an Istio sidecar's outbound headers.
    #[arg(long, env = "MESH_HEADERS", value_parser = clap::builder::BoolishValueParser::new())]
    pub mesh_headers: bool,
    /// Another build of the filter, run as variant `alt` with mplb's configuration.
    #[arg(long, env = "ALT_WASM")]
    pub alt_wasm: Option<PathBuf>,
    /// wasm-opt level of the alt modules (-O3, -Oz, none).
    #[arg(
        long,
        env = "ALT_WASM_OPT",
        default_value = "-Oz",
        allow_hyphen_values = true
    )]
    pub alt_wasm_opt: String,
    /// More builds to compare (alt2, alt3, ...).
    #[arg(long, env = "MORE_WASM", value_delimiter = ' ')]
    pub more_wasm: Vec<PathBuf>,
}
