//! Changes to a running stack: starting a pod or a host agent, rewriting the
//! weight server's topology, and the scenario's timed events ([`Event`]):
//! a hog starts or stops on a node (a `lab-app` burning CPU in the node's
//! cgroup), a host agent or the weight server is killed or restarted, a pod
//! is added, removed or turns (not) ready. The file-topology weight server
//! has no file watch, so a pod change rewrites the topology file and
//! restarts the server (its state directory keeps the table meanwhile, and
//! the filters keep their last table).

use std::process::Command;
use std::time::Duration;

use mplb_wire::scenario::Event;
use serde::Serialize;

use crate::envoy::Balancer;
use crate::error::{Error, Result};
use crate::procs::{Proc, wait_ready};
use crate::stack::Stack;

/// What applying one event did, for the results.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Applied {
    /// Seconds into the measured window it was due.
    pub at_s: f64,
    /// Seconds into the window it was applied.
    pub applied_s: f64,
    /// `hog_start node-c` etc.
    pub label: String,
    /// The observed effect (the process that started, exited, ...).
    pub effect: String,
}

impl Stack {
    /// Start a pod's process in its cgroup (not waiting for it).
    pub fn spawn_pod(&mut self, pod: &str) -> Result<()> {
        let scenario = &self.scenario;
        let p = scenario
            .pods
            .iter()
            .find(|p| p.name == pod)
            .ok_or_else(|| Error::Scenario(format!("unknown pod {pod:?}")))?;
        let svc = scenario
            .service(&p.service)
            .ok_or_else(|| Error::Scenario(format!("pod {pod} names unknown service")))?;
        let cg = &self.cgroups.0;
        let rel = format!("{}/{}", p.node, p.name);
        let mut cmd = Command::new(&self.bins.lab_app);
        cmd.arg("--listen")
            .arg(self.pod_addrs[&p.name].to_string())
            .arg("--pod")
            .arg(&p.name)
            .arg("--cost-us")
            .arg(svc.cost_us.to_string())
            .arg("--hog-millicores")
            .arg(svc.hog_millicores.to_string());
        if let Some(callee) = svc.calls.as_ref().and_then(|c| scenario.service(c))
            && let Some((listen, _)) = self.sidecars.get(&p.name)
        {
            cmd.arg("--next-url")
                .arg(format!("http://{listen}/"))
                .arg("--next-authority")
                .arg(callee.authority());
        }
        if let Balancer::Cswrr(_) = self.cfg.balancer
            && let Some(n) = scenario.nodes.iter().find(|n| n.name == p.node)
        {
            cmd.arg("--orca-node-usage")
                .arg(cg.usage_file(&p.node))
                .arg("--orca-node-capacity-millicores")
                .arg(n.capacity_millicores.to_string());
        }
        let proc = Proc::spawn_in(&p.name, cmd, &self.dir, &cg.procs_files(&rel))?;
        self.apps.insert(p.name.clone(), proc);
        Ok(())
    }

    /// Wait until a started pod answers its stats endpoint.
    pub async fn wait_pod(&mut self, pod: &str, client: &reqwest::Client) -> Result<()> {
        let url = format!("http://{}{}", self.pod_addrs[pod], crate::app::STATS_PATH);
        let proc = self
            .apps
            .get_mut(pod)
            .ok_or_else(|| Error::Scenario(format!("pod {pod} is not running")))?;
        wait_ready(client, &url, Duration::from_secs(10), || proc.check()).await
    }

    /// Start a node's host agent, watching every pod cgroup of the node.
    pub fn spawn_agent(&mut self, node: &str) -> Result<()> {
        let cg = &self.cgroups.0;
        let pods: Vec<String> = self
            .scenario
            .pods
            .iter()
            .filter(|p| p.node == node)
            .map(|p| {
                format!(
                    "{}={}",
                    p.name,
                    cg.agent_path(&format!("{node}/{}", p.name))
                )
            })
            .collect();
        let mut cmd = Command::new(&self.bins.host_agent);
        cmd.arg("--server")
            .arg(format!("http://{}", self.server_addr))
            .arg("--node-name")
            .arg(node)
            .arg("--interval")
            .arg(humantime::format_duration(self.cfg.interval).to_string())
            .arg("--cgroup-root")
            .arg(cg.root())
            .arg("--node-cgroup")
            .arg(cg.agent_path(node))
            .arg("--pods")
            .arg(pods.join(","));
        let proc = Proc::spawn_in(&format!("agent-{node}"), cmd, &self.dir, &self.infra)?;
        self.agents.insert(node.to_string(), proc);
        Ok(())
    }

    /// Write `topology.yaml` for the pods present now; returns its path.
    pub fn write_topology(&self) -> Result<std::path::PathBuf> {
        let path = self.dir.join("topology.yaml");
        let addrs = &self.pod_addrs;
        let yaml = self.scenario.topology_yaml(
            &|pod| {
                addrs
                    .get(pod)
                    .copied()
                    .unwrap_or(([127, 0, 0, 1], 0).into())
            },
            &self.absent,
            &self.not_ready,
        );
        std::fs::write(&path, yaml).map_err(|e| Error::io("write", &path, e))?;
        Ok(path)
    }

    /// Rewrite the topology and restart a running weight server on it.
    async fn retopologise(&mut self, client: &reqwest::Client) -> Result<String> {
        self.write_topology()?;
        if self.server.is_some() {
            self.kill_server();
            self.start_server(client).await?;
            return Ok("topology rewritten, weight server restarted on it".into());
        }
        Ok("topology rewritten (weight server down)".into())
    }

    /// Apply one event; the effect says what was observed.
    pub async fn apply(&mut self, e: &Event, client: &reqwest::Client) -> Result<String> {
        let cg = self.cgroups.0.clone();
        match e {
            Event::HogStart {
                node, millicores, ..
            } => {
                let rel = format!("{node}/event-hog");
                cg.create(&rel)?;
                cg.set_shares(&rel, millicores * 1024 / 1000)?;
                let mut cmd = Command::new(&self.bins.lab_app);
                cmd.args(["--listen", "127.0.0.1:0", "--cost-us", "0", "--pod"])
                    .arg(format!("hog-{node}"))
                    .arg("--hog-millicores")
                    .arg(millicores.to_string());
                let name = format!("hog-{node}");
                let proc = Proc::spawn_in(&name, cmd, &self.dir, &cg.procs_files(&rel))?;
                let pid = proc.pid();
                self.hogs.insert(node.clone(), proc);
                Ok(format!("hog pid {pid} ({millicores}m) in {rel}"))
            }
            Event::HogStop { node, .. } => stop(self.hogs.remove(node), "hog"),
            Event::AgentKill { node, .. } => stop(self.agents.remove(node), "agent"),
            Event::AgentRestart { node, .. } => {
                self.spawn_agent(node)?;
                Ok(format!("agent pid {}", self.agents[node].pid()))
            }
            Event::ServerKill { .. } => {
                let pid = self.server.as_ref().map(Proc::pid);
                self.kill_server();
                Ok(format!("weight server pid {pid:?} killed"))
            }
            Event::ServerRestart { .. } => {
                self.start_server(client).await?;
                Ok("weight server answers /healthz".into())
            }
            Event::PodAdd { pod, .. } => {
                self.spawn_pod(pod)?;
                self.wait_pod(pod, client).await?;
                self.absent.remove(pod);
                let t = self.retopologise(client).await?;
                Ok(format!("pod {pod} answers; {t}"))
            }
            Event::PodRemove { pod, .. } => {
                let s = stop(self.apps.remove(pod), "pod")?;
                self.absent.insert(pod.clone());
                let t = self.retopologise(client).await?;
                Ok(format!("{s}; {t}"))
            }
            Event::PodNotReady { pod, .. } => {
                self.not_ready.insert(pod.clone());
                self.retopologise(client).await
            }
            Event::PodReady { pod, .. } => {
                self.not_ready.remove(pod);
                self.retopologise(client).await
            }
        }
    }
}

fn stop(p: Option<Proc>, what: &str) -> Result<String> {
    let mut p = p.ok_or_else(|| Error::Scenario(format!("no {what} process to stop")))?;
    let pid = p.pid();
    p.kill();
    Ok(format!("{what} pid {pid} exited: {}", !p.alive()))
}
