//! A running lab stack: node and pod cgroups, app processes, the weight
//! server, one host agent per node, the gateway and sidecar Envoys. Dropping
//! the stack stops every process (processes first), then removes the cgroups.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cgroup::CgroupFs;
use crate::envoy::{Balancer, Steering};
use crate::error::{Error, Result};
use crate::procs::{Ports, Proc, wait_ready};
use crate::scenario::Scenario;

pub use crate::binaries::Binaries;

mod plan;

/// How to start one stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Mount root of the cgroup v1 hierarchies (`--cgroup-root`, default `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Name of the lab subtree in each hierarchy.
    pub cgroup_name: String,
    /// First loopback port to hand out (0 = kernel-chosen ports).
    pub base_port: u16,
    /// How the Envoys' filter steers (`Off`: no filter, the baselines).
    pub steering: Steering,
    /// The service clusters' balancer (`cswrr` makes the pods answer ORCA).
    pub balancer: Balancer,
    /// Policy the weight server starts with.
    pub policy: String,
    /// Agents' report interval and the server's recompute interval; the
    /// filters poll every half of it (within 50 ms..2.5 s).
    pub interval: Duration,
    /// Extra flags for the weight server (`--server-arg`), after the lab's.
    pub server_args: Vec<String>,
    /// Per-run files: configs, logs, state.
    pub dir: PathBuf,
}

/// The gateway Envoy of one entry service.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The entry service this gateway routes to.
    pub service: String,
    /// Where the load generator sends this service's requests.
    pub listen: SocketAddr,
    /// The gateway Envoy's admin address (stats, readiness).
    pub admin: SocketAddr,
}

/// The running stack. Field order matters: processes drop before cgroups.
pub struct Stack {
    /// Gateway and sidecar Envoy processes.
    pub envoys: Vec<Proc>,
    /// Host agents by node (a killed one is absent).
    pub agents: BTreeMap<String, Proc>,
    /// Event hogs by node.
    pub hogs: BTreeMap<String, Proc>,
    /// The weight server (`None` after [`Stack::kill_server`]).
    pub server: Option<Proc>,
    /// Pods by name (absent and removed pods are not here).
    pub apps: BTreeMap<String, Proc>,
    /// The weight server's listen address.
    pub server_addr: SocketAddr,
    /// The first entry service's gateway.
    pub gateway: SocketAddr,
    /// Admin address of the first entry service's gateway.
    pub gateway_admin: SocketAddr,
    /// One gateway per entry service, in scenario order.
    pub gateways: Vec<Gateway>,
    /// Envoy admin addresses by process name.
    pub envoy_admins: BTreeMap<String, SocketAddr>,
    /// Every pod's listen address, by pod name (absent pods included).
    pub pod_addrs: BTreeMap<String, SocketAddr>,
    /// The scenario the stack was started for.
    pub scenario: Scenario,
    /// Pods not in the topology now (absent at start, or removed by an event).
    pub absent: BTreeSet<String>,
    /// Pods the topology lists as not ready.
    pub not_ready: BTreeSet<String>,
    /// The lab's cgroup subtree, removed when the stack drops.
    pub cgroups: CgroupGuard,
    /// `cgroup.procs` files of the lab's `infra` cgroup.
    pub infra: Vec<PathBuf>,
    pub(crate) server_cmd: Vec<String>,
    pub(crate) sidecars: BTreeMap<String, (SocketAddr, SocketAddr)>,
    pub(crate) cfg: StackConfig,
    pub(crate) bins: Binaries,
    pub(crate) dir: PathBuf,
}

/// The cgroup (no quota) of the lab's own processes: Envoys, hey, server, agents.
pub const INFRA: &str = "infra";
/// cpu.shares of the lab's subtree (1024 = one core's weight).
pub const LAB_SHARES: u64 = 10 * 1024;

/// Removes the lab cgroups on drop (after the stack's processes are gone).
pub struct CgroupGuard(pub CgroupFs);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        kill_pids(&self.0.live_pids());
        if let Err(e) = self.0.remove_all() {
            tracing::warn!("{e}");
        }
    }
}

/// SIGKILL each pid, then give the kernel a moment to empty the cgroups.
pub fn kill_pids(pids: &[u32]) {
    for pid in pids {
        // SAFETY: kill(2) on a pid found in the lab's own cgroups.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    if !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Open the cgroup hierarchies and make sure no other run owns the subtree.
pub fn prepare_cgroups(root: &Path, name: &str, force_cleanup: bool) -> Result<CgroupFs> {
    let fs = CgroupFs::open(root, name)?;
    if fs.exists() {
        let pids = fs.live_pids();
        if !pids.is_empty() && !force_cleanup {
            return Err(Error::Precondition(format!(
                "cgroup {name} already exists with live processes {pids:?} (another lab run?); stop it or pass --force-cleanup"
            )));
        }
        kill_pids(&pids);
        fs.remove_all()?;
    }
    Ok(fs)
}

impl Stack {
    /// Start everything and wait until each part is ready.
    pub async fn start(
        cfg: &StackConfig,
        scenario: &Scenario,
        bins: &Binaries,
        cgroups: CgroupFs,
        client: &reqwest::Client,
    ) -> Result<Stack> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| Error::io("create", &cfg.dir, e))?;
        let wasm = match cfg.steering {
            Steering::Off => None,
            _ => Some(bins.require_wasm()?.to_path_buf()),
        };
        let mut ports = Ports::new(cfg.base_port);
        let server_addr = ports.take()?;
        let gateway = ports.take()?;
        let gateway_admin = ports.take()?;
        let mut pod_addrs = BTreeMap::new();
        for p in &scenario.pods {
            pod_addrs.insert(p.name.clone(), ports.take()?);
        }
        // One sidecar (listener, admin) per pod of a service that calls another.
        let mut sidecars = BTreeMap::new();
        for p in &scenario.pods {
            if scenario
                .service(&p.service)
                .and_then(|s| s.calls.as_ref())
                .is_some()
            {
                sidecars.insert(p.name.clone(), (ports.take()?, ports.take()?));
            }
        }
        let mut gateways = Vec::new();
        for (i, e) in scenario.entries().enumerate() {
            let (listen, admin) = if i == 0 {
                (gateway, gateway_admin)
            } else {
                (ports.take()?, ports.take()?)
            };
            gateways.push(Gateway {
                service: e.name.clone(),
                listen,
                admin,
            });
        }

        let mut stack = Stack {
            envoys: Vec::new(),
            agents: BTreeMap::new(),
            hogs: BTreeMap::new(),
            server: None,
            apps: BTreeMap::new(),
            server_addr,
            gateway,
            gateway_admin,
            gateways: gateways.clone(),
            envoy_admins: BTreeMap::new(),
            pod_addrs: pod_addrs.clone(),
            scenario: scenario.clone(),
            absent: scenario.absent_at_start.clone(),
            not_ready: BTreeSet::new(),
            cgroups: CgroupGuard(cgroups),
            infra: Vec::new(),
            server_cmd: Vec::new(),
            sidecars: sidecars.clone(),
            cfg: cfg.clone(),
            bins: bins.clone(),
            dir: cfg.dir.clone(),
        };
        let cg = stack.cgroups.0.clone();
        // The lab's subtree weighs as much as LAB_SHARES / 1024 cores against
        // other work on the machine, so nodes get their quota on a busy host
        // (the quotas still cap them); Envoys, hey, the server and agents run
        // in `infra` (no quota).
        cg.create(INFRA)?;
        cg.set_shares("", LAB_SHARES)?;
        stack.infra = cg.procs_files(INFRA);
        let infra = stack.infra.clone();
        for n in &scenario.nodes {
            cg.create(&n.name)?;
            cg.set_quota(&n.name, n.capacity_millicores)?;
        }

        // Pods (every pod's cgroup exists, so agents can name it from the start).
        for p in &scenario.pods {
            let svc = scenario.service(&p.service).ok_or_else(|| {
                Error::Precondition(format!(
                    "pod {} names unknown service {}",
                    p.name, p.service
                ))
            })?;
            let rel = format!("{}/{}", p.node, p.name);
            cg.create(&rel)?;
            cg.set_shares(&rel, svc.request_millicores * 1024 / 1000)?;
        }
        let present: Vec<String> = scenario
            .pods
            .iter()
            .filter(|p| !stack.absent.contains(&p.name))
            .map(|p| p.name.clone())
            .collect();
        for pod in &present {
            stack.spawn_pod(pod)?;
        }
        for pod in &present {
            stack.wait_pod(pod, client).await?;
        }

        // Weight server.
        let state_dir = cfg.dir.join("server-state");
        std::fs::create_dir_all(&state_dir).map_err(|e| Error::io("create", &state_dir, e))?;
        let topo = stack.write_topology()?;
        stack.server_cmd = plan::server_args(cfg, scenario, server_addr, &topo, &state_dir);
        stack.start_server(client).await?;

        // Host agents.
        for n in &scenario.nodes {
            stack.spawn_agent(&n.name)?;
        }

        // Envoys: a gateway per entry service, sidecars towards callees.
        let specs = plan::envoy_specs(
            cfg,
            scenario,
            &gateways,
            &sidecars,
            &pod_addrs,
            server_addr,
            wasm,
        );
        for spec in &specs {
            let conf = spec.write(&cfg.dir)?;
            let cmd = spec.launch(&bins.envoy, &conf).command();
            stack
                .envoys
                .push(Proc::spawn_in(&spec.name, cmd, &cfg.dir, &infra)?);
            stack.envoy_admins.insert(spec.name.clone(), spec.admin);
        }
        for (i, spec) in specs.iter().enumerate() {
            let url = format!("http://{}/ready", spec.admin);
            let proc = &mut stack.envoys[i];
            wait_ready(client, &url, Duration::from_secs(20), || proc.check()).await?;
        }
        Ok(stack)
    }

    /// (Re)start the weight server with the same flags and wait for /healthz.
    pub async fn start_server(&mut self, client: &reqwest::Client) -> Result<()> {
        let mut cmd = Command::new(&self.bins.weight_server);
        cmd.args(&self.server_cmd);
        let mut proc = Proc::spawn_in("weight-server", cmd, &self.dir, &self.infra)?;
        let url = format!("http://{}/healthz", self.server_addr);
        wait_ready(client, &url, Duration::from_secs(15), || proc.check()).await?;
        self.server = Some(proc);
        Ok(())
    }

    /// Kill the weight server (the failure drill).
    pub fn kill_server(&mut self) {
        if let Some(mut p) = self.server.take() {
            p.kill();
        }
    }

    /// Fail if any process of the stack has died.
    pub fn check_alive(&mut self) -> Result<()> {
        for p in self
            .apps
            .values_mut()
            .chain(self.agents.values_mut())
            .chain(self.hogs.values_mut())
            .chain(self.envoys.iter_mut())
            .chain(self.server.iter_mut())
        {
            p.check()?;
        }
        Ok(())
    }

    /// The gateway URL the load generator targets.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/", self.gateway)
    }

    /// The weight server URL of `path` (e.g. `/admin/state`).
    pub fn server_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server_addr)
    }
}
