//! The `weight-server` binary: parse flags, init logging, load the topology,
//! restore the admin state, bind, serve until SIGTERM. `render-istio` prints
//! the Istio routing YAML of a topology file.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use weight_server::admin::AdminAuth;
use weight_server::api::{self, AppState};
use weight_server::auth::ReportAuth;
use weight_server::auth::review::Reviewer;
use weight_server::clock::SystemClock;
use weight_server::config::{Cli, Command, ServeArgs};
use weight_server::engine::Engine;
use weight_server::persist::Store;
use weight_server::topology::{self, file, kube::KubeConfig};

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
            rt.enable_all().build()?.block_on(serve(cli.serve))
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = args.engine_config()?;
    let source = args
        .topology
        .clone()
        .context("--topology kube|FILE (MPLB_TOPOLOGY) is required")?;
    let (tx, rx) = tokio::sync::watch::channel(None);
    let mut source_task = None;
    let mut _file_tx = None;
    let mut reports_auth = ReportAuth::Disabled;
    let mut kube_client = None;
    if source == "kube" {
        let client = topology::kube::default_client().await?;
        kube_client = Some(client.clone());
        reports_auth = ReportAuth::Review(Box::new(Reviewer::new(
            client.clone(),
            &args.report_audience,
            &args.report_account,
            Arc::new(SystemClock),
        )));
        let kcfg = KubeConfig {
            managed_label: args.managed_label.clone(),
            namespaces: args.namespaces.clone(),
            cluster_domain: args.cluster_domain.clone(),
        };
        source_task = Some(tokio::spawn(async move {
            if let Err(e) = topology::kube::run(client, kcfg, tx).await {
                tracing::error!(error = %e, "kube topology source stopped");
            }
        }));
    } else {
        let topo = file::load(Path::new(&source), &args.cluster_domain)?;
        tracing::info!(file = %source, nodes = topo.nodes.len(), services = topo.services.len(), pods = topo.pods.len(), "topology loaded");
        topology::publish(&tx, topo);
        _file_tx = Some(tx);
    }
    if args.insecure_reports {
        tracing::warn!("--insecure-reports: host reports need no token");
        reports_auth = ReportAuth::Insecure;
    } else if matches!(reports_auth, ReportAuth::Disabled) {
        tracing::warn!(
            "no tokens can be checked without --topology kube: every host report is refused (--insecure-reports for local use)"
        );
    }
    let auth = match (&args.admin_token_file, args.insecure_admin) {
        (Some(f), _) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("reading the admin token file {}", f.display()))?;
            AdminAuth::from_token(&t).with_context(|| f.display().to_string())?
        }
        (None, true) => {
            tracing::warn!("--insecure-admin: admin mutations need no token");
            AdminAuth::Insecure
        }
        (None, false) => AdminAuth::Disabled,
    };
    let store = match &args.state_dir {
        Some(d) => Store::in_dir(d)?,
        None => Store::memory(),
    };
    let engine = Arc::new(Engine::new(
        cfg,
        Arc::new(SystemClock),
        store,
        rx,
        args.policy,
    )?);
    engine.recompute()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!("listening on {}", listener.local_addr()?);
    let looper = tokio::spawn(weight_server::engine::recompute_loop(
        engine.clone(),
        *args.recompute_interval,
    ));
    let replica = weight_server::leader::start(
        &args.leader,
        kube_client,
        engine.clone(),
        Arc::new(SystemClock),
        listener.local_addr()?,
    )?;
    let state = AppState {
        engine,
        auth: Arc::new(auth),
        reports_auth: Arc::new(reports_auth),
        replica: replica.as_ref().map(|(r, _)| r.clone()),
    };
    api::run(listener, state, shutdown_signal()).await?;
    looper.abort();
    if let Some(t) = source_task {
        t.abort();
    }
    tracing::info!("stopped");
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
