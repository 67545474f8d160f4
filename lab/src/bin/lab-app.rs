//! `lab-app`: the lab's test application (one process per pod).

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mplb_lab::app::{AppConfig, serve};

/// A CPU-costed HTTP service for the multiparty-lb lab.
#[derive(Debug, Parser)]
#[command(name = "lab-app", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LAB_APP_LISTEN", default_value = "127.0.0.1:0")]
    listen: String,
    /// This pod's name.
    #[arg(long, env = "LAB_APP_POD")]
    pod: String,
    /// CPU time per request, in microseconds.
    #[arg(long, env = "LAB_APP_COST_US", default_value_t = 1000)]
    cost_us: u64,
    /// URL of the sidecar listener for the next tier (e.g. http://127.0.0.1:15001/).
    #[arg(long, env = "LAB_APP_NEXT_URL", requires = "next_authority")]
    next_url: Option<String>,
    /// Authority used for the next tier (e.g. profile.default.svc.cluster.local:8081).
    #[arg(long, env = "LAB_APP_NEXT_AUTHORITY")]
    next_authority: Option<String>,
    /// Background CPU demand in millicores (a batch hog); 0 = none.
    #[arg(long, env = "LAB_APP_HOG_MILLICORES", default_value_t = 0)]
    hog_millicores: u64,
    /// Answer ORCA load reports (`endpoint-load-metrics`) with the CPU
    /// utilisation of this node cgroup's `cpuacct.usage` file.
    #[arg(
        long,
        env = "LAB_APP_ORCA_NODE_USAGE",
        requires = "orca_node_capacity_millicores"
    )]
    orca_node_usage: Option<std::path::PathBuf>,
    /// The node's capacity in millicores (for the utilisation).
    #[arg(long, env = "LAB_APP_ORCA_NODE_CAPACITY_MILLICORES")]
    orca_node_capacity_millicores: Option<u64>,
    /// Tokio worker threads.
    #[arg(long, env = "LAB_APP_THREADS", default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cfg = AppConfig {
        pod: args.pod.clone(),
        cost: Duration::from_micros(args.cost_us),
        next: args.next_url.zip(args.next_authority),
        hog_millicores: args.hog_millicores,
        orca: args
            .orca_node_usage
            .zip(args.orca_node_capacity_millicores)
            .map(
                |(usage_file, capacity_millicores)| mplb_lab::orca::NodeCpu {
                    usage_file,
                    capacity_millicores,
                },
            ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("bind {}", args.listen))?;
        tracing::info!(pod = %args.pod, addr = %listener.local_addr()?, "lab-app serving");
        serve(listener, cfg).await.context("serve")
    })
}
