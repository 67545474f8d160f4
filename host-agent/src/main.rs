//! `host-agent`: parse flags, init logging, run the sampler and sender.
#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use host_agent::clock::SystemClock;
use host_agent::config::Config;
use host_agent::sampler::Sampler;
use host_agent::sender::Sender;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log_format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(ansi).init();
    }
    let (sampler_cfg, sender_cfg) = cfg.build()?;
    let clock = Arc::new(SystemClock::new());
    let sampler = Sampler::new(sampler_cfg, clock.clone()).context("cannot start sampling")?;
    tracing::info!(
        node = %cfg.node_name,
        server = %cfg.server,
        interval = ?cfg.interval,
        layout = %sampler.layout().describe(),
        node_source = ?sampler.node_source(),
        "host agent starting"
    );
    let sender = Sender::new(sender_cfg, clock).context("cannot build the HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(host_agent::agent::run(
        sampler,
        sender,
        cfg.interval,
        shutdown_signal(),
    ));
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
