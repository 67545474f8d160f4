//! A running lab stack: node and pod cgroups, app processes, the weight
//! server, one host agent per node, the gateway and sidecar Envoys. Dropping
//! the stack stops every process (processes first), then removes the cgroups.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cgroup::CgroupFs;
use crate::envoy::{EnvoySpec, Steering, Upstream};
use crate::error::{Error, Result};
use crate::procs::{Ports, Proc, wait_ready};
use crate::scenario::Scenario;

/// Where the lab's executables and files are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub weight_server: PathBuf,
    pub host_agent: PathBuf,
    pub lab_app: PathBuf,
    pub envoy: PathBuf,
    /// The filter; needed unless steering is off.
    pub wasm: Option<PathBuf>,
}

impl Binaries {
    /// Find `weight-server`, `host-agent` and `lab-app` in `bin_dir` (default:
    /// next to the running executable, or its parent for test binaries in
    /// `deps/`), Envoy as usual, the wasm at `wasm` or
    /// `<target>/wasm32-wasip1/wasm-release/mplb_filter.wasm`.
    pub fn find(bin_dir: Option<&Path>, wasm: Option<&Path>) -> Result<Self> {
        let dir = match bin_dir {
            Some(d) => d.to_path_buf(),
            None => default_bin_dir()?,
        };
        let need = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::Precondition(format!(
                    "{} not found; build it first: `cargo build --workspace --bins` (or pass --bin-dir)",
                    p.display()
                )))
            }
        };
        let wasm = match wasm {
            Some(w) if w.is_file() => Some(w.to_path_buf()),
            Some(w) => {
                return Err(Error::Precondition(format!(
                    "--wasm {} is not a file",
                    w.display()
                )));
            }
            None => dir
                .parent()
                .map(|target| target.join("wasm32-wasip1/wasm-release/mplb_filter.wasm"))
                .filter(|p| p.is_file()),
        };
        Ok(Binaries {
            weight_server: need("weight-server")?,
            host_agent: need("host-agent")?,
            lab_app: need("lab-app")?,
            envoy: crate::envoy::find_envoy()?,
            wasm,
        })
    }

    /// The wasm, or a clear error naming the build command.
    pub fn require_wasm(&self) -> Result<&Path> {
        self.wasm.as_deref().ok_or_else(|| {
            Error::Precondition(
                "mplb_filter.wasm not found; build it: `cargo build -p mplb-filter --target wasm32-wasip1 --profile wasm-release` (or pass --wasm)".into(),
            )
        })
    }
}

fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::Precondition(e.to_string()))?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| Error::Precondition("executable has no directory".into()))?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// How to start one stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub cgroup_root: PathBuf,
    /// Name of the lab subtree in each hierarchy.
    pub cgroup_name: String,
    pub base_port: u16,
    pub steering: Steering,
    /// Policy the weight server starts with.
    pub policy: String,
    pub interval: Duration,
    /// Per-run files: configs, logs, state.
    pub dir: PathBuf,
}

/// The running stack. Field order matters: processes drop before cgroups.
pub struct Stack {
    pub envoys: Vec<Proc>,
    pub agents: Vec<Proc>,
    pub server: Option<Proc>,
    pub apps: Vec<Proc>,
    pub server_addr: SocketAddr,
    pub gateway: SocketAddr,
    pub gateway_admin: SocketAddr,
    /// Envoy admin addresses by process name.
    pub envoy_admins: BTreeMap<String, SocketAddr>,
    pub pod_addrs: BTreeMap<String, SocketAddr>,
    pub scenario: Scenario,
    pub cgroups: CgroupGuard,
    /// `cgroup.procs` files of the lab's `infra` cgroup.
    pub infra: Vec<PathBuf>,
    server_cmd: Vec<String>,
    bins: Binaries,
    dir: PathBuf,
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

        let mut stack = Stack {
            envoys: Vec::new(),
            agents: Vec::new(),
            server: None,
            apps: Vec::new(),
            server_addr,
            gateway,
            gateway_admin,
            envoy_admins: BTreeMap::new(),
            pod_addrs: pod_addrs.clone(),
            scenario: scenario.clone(),
            cgroups: CgroupGuard(cgroups),
            infra: Vec::new(),
            server_cmd: Vec::new(),
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

        // Pods.
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
            let mut cmd = Command::new(&bins.lab_app);
            cmd.arg("--listen")
                .arg(pod_addrs[&p.name].to_string())
                .arg("--pod")
                .arg(&p.name)
                .arg("--cost-us")
                .arg(svc.cost_us.to_string())
                .arg("--hog-millicores")
                .arg(svc.hog_millicores.to_string());
            if let Some(callee) = svc.calls.as_ref().and_then(|c| scenario.service(c)) {
                let (listen, _) = sidecars[&p.name];
                cmd.arg("--next-url")
                    .arg(format!("http://{listen}/"))
                    .arg("--next-authority")
                    .arg(callee.authority());
            }
            let proc = Proc::spawn_in(&p.name, cmd, &cfg.dir, &cg.procs_files(&rel))?;
            stack.apps.push(proc);
        }
        for (i, p) in scenario.pods.iter().enumerate() {
            let url = format!("http://{}{}", pod_addrs[&p.name], crate::app::STATS_PATH);
            let proc = &mut stack.apps[i];
            wait_ready(client, &url, Duration::from_secs(10), || proc.check()).await?;
        }

        // Weight server.
        let topo = cfg.dir.join("topology.yaml");
        let yaml = scenario.topology_yaml(&|pod| pod_addrs[pod]);
        std::fs::write(&topo, yaml).map_err(|e| Error::io("write", &topo, e))?;
        let state_dir = cfg.dir.join("server-state");
        std::fs::create_dir_all(&state_dir).map_err(|e| Error::io("create", &state_dir, e))?;
        stack.server_cmd = vec![
            "--listen".into(),
            server_addr.to_string(),
            "--topology".into(),
            topo.display().to_string(),
            "--policy".into(),
            cfg.policy.clone(),
            "--recompute-interval".into(),
            humantime::format_duration(cfg.interval).to_string(),
            "--state-dir".into(),
            state_dir.display().to_string(),
            "--insecure-admin".into(),
            "--insecure-reports".into(),
        ];
        stack.start_server(client).await?;

        // Host agents.
        for n in &scenario.nodes {
            let pods: Vec<String> = scenario
                .pods
                .iter()
                .filter(|p| p.node == n.name)
                .map(|p| {
                    format!(
                        "{}={}",
                        p.name,
                        cg.agent_path(&format!("{}/{}", n.name, p.name))
                    )
                })
                .collect();
            let mut cmd = Command::new(&bins.host_agent);
            cmd.arg("--server")
                .arg(format!("http://{server_addr}"))
                .arg("--node-name")
                .arg(&n.name)
                .arg("--interval")
                .arg(humantime::format_duration(cfg.interval).to_string())
                .arg("--cgroup-root")
                .arg(cg.root())
                .arg("--node-cgroup")
                .arg(cg.agent_path(&n.name))
                .arg("--pods")
                .arg(pods.join(","));
            let name = format!("agent-{}", n.name);
            stack
                .agents
                .push(Proc::spawn_in(&name, cmd, &cfg.dir, &infra)?);
        }

        // Envoys: the gateway towards the entry service, sidecars towards callees.
        let poll_ms = cfg.interval.as_millis().clamp(100, 5000) as u64 / 2;
        let upstream = |svc: &str| Upstream {
            name: svc.to_string(),
            pods: scenario
                .pods_of(svc)
                .map(|p| (p.name.clone(), pod_addrs[&p.name]))
                .collect(),
        };
        let mut specs = Vec::new();
        if let Some(entry) = scenario.services.iter().find(|s| s.entry) {
            specs.push(EnvoySpec {
                name: "gateway".into(),
                listen: gateway,
                admin: gateway_admin,
                upstream: upstream(&entry.name),
                steering: cfg.steering,
                own_service: None,
                weight_server: server_addr,
                wasm: wasm.clone(),
                poll_interval_ms: poll_ms,
            });
        }
        for (pod, (listen, admin)) in &sidecars {
            let Some(p) = scenario.pods.iter().find(|p| &p.name == pod) else {
                continue;
            };
            let Some(callee) = scenario.service(&p.service).and_then(|s| s.calls.clone()) else {
                continue;
            };
            specs.push(EnvoySpec {
                name: format!("sidecar-{pod}"),
                listen: *listen,
                admin: *admin,
                upstream: upstream(&callee),
                steering: cfg.steering,
                own_service: Some(p.service.clone()),
                weight_server: server_addr,
                wasm: wasm.clone(),
                poll_interval_ms: poll_ms,
            });
        }
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
            .iter_mut()
            .chain(self.agents.iter_mut())
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

    pub fn server_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server_addr)
    }
}
