//! The whole server in one call: [`serve`] builds the topology source, who
//! may post reports and mutate, the engine and its first round, then runs
//! the recompute loop and the HTTP API on a bound listener until `shutdown`
//! resolves. The pieces ([`Server::start`], [`Server::run`]) are public so a
//! caller can put something between them (e.g. wait to be leader).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::auth::review::Reviewer;
use crate::auth::{AdminAuth, ReportAuth};
use crate::clock::SystemClock;
use crate::config::ServeArgs;
use crate::engine::{self, Engine};
use crate::persist::Store;
use crate::topology::{self, TopologyTx, file, kube::KubeConfig};
use crate::{Error, Result};

/// Run the server configured by `config` on `listener` until `shutdown`
/// resolves; in-flight requests are drained before it returns.
pub async fn serve(
    config: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Server::start(&config).await?.run(listener, shutdown).await
}

/// A server built and ready to serve: the engine holds its first table.
pub struct Server {
    state: AppState,
    recompute_interval: std::time::Duration,
    source_task: Option<JoinHandle<()>>,
    /// The API server client, with `--topology kube` (for the Lease).
    kube_client: Option<kube::Client>,
    /// `--leader-elect` and its timing.
    leader: crate::leader::LeaderArgs,
    /// Keeps a file topology's channel open (its receivers see no end).
    _file_tx: Option<TopologyTx>,
}

impl Server {
    /// Build the topology source, the auth of reports and admin mutations,
    /// the engine (restoring the admin state), and run the first round.
    pub async fn start(args: &ServeArgs) -> Result<Server> {
        let cfg = args.engine_config()?;
        let source = args.topology.clone().ok_or_else(|| {
            Error::Config("--topology kube|FILE (MPLB_TOPOLOGY) is required".into())
        })?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        let mut source_task = None;
        let mut file_tx = None;
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
            file_tx = Some(tx);
        }
        if args.insecure_reports {
            tracing::warn!("--insecure-reports: host reports need no token");
            reports_auth = ReportAuth::Insecure;
        } else if matches!(reports_auth, ReportAuth::Disabled) {
            tracing::warn!(
                "no tokens can be checked without --topology kube: every host report is refused (--insecure-reports for local use)"
            );
        }
        let auth = admin_auth(args)?;
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
        Ok(Server {
            state: AppState {
                engine,
                auth: Arc::new(auth),
                reports_auth: Arc::new(reports_auth),
                replica: None,
            },
            recompute_interval: *args.recompute_interval,
            source_task,
            kube_client,
            leader: args.leader.clone(),
            _file_tx: file_tx,
        })
    }

    /// What the HTTP handlers share (the engine among it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Run the recompute loop, the election (with `--leader-elect`) and the
    /// HTTP API on `listener` until `shutdown` resolves, then stop them and
    /// the topology source.
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let local = listener.local_addr()?;
        tracing::info!("listening on {local}");
        let replica = crate::leader::start(
            &self.leader,
            self.kube_client.take(),
            self.state.engine.clone(),
            Arc::new(SystemClock),
            local,
        )?;
        self.state.replica = replica.as_ref().map(|(r, _)| r.clone());
        let looper = tokio::spawn(engine::recompute_loop(
            self.state.engine.clone(),
            self.recompute_interval,
        ));
        let served = api::run(listener, self.state.clone(), shutdown).await;
        looper.abort();
        drop(replica);
        if let Some(t) = self.source_task.take() {
            t.abort();
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state)
            .field("recompute_interval", &self.recompute_interval)
            .field("kube", &self.kube_client.is_some())
            .field("leader", &self.leader)
            .finish_non_exhaustive()
    }
}

/// Who may mutate through the admin API: a token file, `--insecure-admin`,
/// or nobody.
fn admin_auth(args: &ServeArgs) -> Result<AdminAuth> {
    match (&args.admin_token_file, args.insecure_admin) {
        (Some(f), _) => {
            let t = std::fs::read_to_string(f).map_err(|e| {
                Error::Config(format!("reading the admin token file {}: {e}", f.display()))
            })?;
            AdminAuth::from_token(&t).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("{}: {m}", f.display())),
                other => other,
            })
        }
        (None, true) => {
            tracing::warn!("--insecure-admin: admin mutations need no token");
            Ok(AdminAuth::Insecure)
        }
        (None, false) => Ok(AdminAuth::Disabled),
    }
}
