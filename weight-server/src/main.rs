//! The `weight-server` binary: parse flags, init logging, bind, and
//! [`weight_server::serve`] until SIGTERM. `render-istio` prints the Istio
//! routing YAML of a topology file.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use weight_server::config::{Cli, Command, ServeArgs};
use weight_server::topology::file;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.serve.log_json);
    match cli.command {
        Some(Command::RenderIstio(a)) => {
            let topo = file::load(&a.topology, &a.cluster_domain)?;
            let yaml =
                weight_server::render::yaml(&topo, a.mode.into(), &a.header, &a.session_header)?;
            print!("{yaml}");
            Ok(())
        }
        None => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = cli.serve.worker_threads {
                rt.worker_threads(n.max(1));
            }
            rt.enable_all().build()?.block_on(run(cli.serve))
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Check the flags, bind, serve until SIGTERM or an interrupt.
async fn run(args: ServeArgs) -> anyhow::Result<()> {
    args.engine_config()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    weight_server::serve(args, listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
    }
}
