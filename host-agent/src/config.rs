//! Command-line and environment configuration of the `host-agent` binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::error::AgentError;
use crate::sampler::{LocalPod, PodSource, SamplerConfig};
use crate::sender::SenderConfig;

/// multiparty-lb host agent: per-pod CPU from cgroups, pushed to the weight server.
#[derive(Debug, Clone, Parser)]
#[command(name = "host-agent", version)]
pub struct Config {
    /// Base URL of the weight server (reports go to `{server}/v1/reports`).
    #[arg(long, env = "MPLB_SERVER")]
    pub server: String,
    /// File with the projected ServiceAccount token to send with each
    /// report (Kubernetes; the weight server checks it by TokenReview).
    #[arg(long, env = "MPLB_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// This node's name (Kubernetes: from the downward API).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Sampling and push interval, e.g. `1s`, `500ms`.
    #[arg(long, env = "MPLB_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Timeout of one push.
    #[arg(long, env = "MPLB_TIMEOUT", default_value = "800ms", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Largest wait between retries while the server is unreachable.
    #[arg(long, env = "MPLB_MAX_BACKOFF", default_value = "5s", value_parser = humantime::parse_duration)]
    pub max_backoff: Duration,
    /// Root of the cgroup mounts (the host's, in a DaemonSet: /host/sys/fs/cgroup).
    #[arg(long, env = "MPLB_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Kubelet pod log directories, `<namespace>_<name>_<uid>`, for pod names.
    #[arg(long, env = "MPLB_LOG_PODS_DIR", default_value = "/var/log/pods")]
    pub log_pods_dir: PathBuf,
    /// procfs root, for `stat` (node usage, CPU count) and `self/cgroup`.
    #[arg(long, env = "MPLB_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Local mode: `name=path,...`, cgroups (relative to the usage tree) reported as pods.
    #[arg(long, env = "MPLB_PODS", conflicts_with = "pods_file")]
    pub pods: Option<String>,
    /// Local mode: a file of `name=path` lines (`#` comments).
    #[arg(long, env = "MPLB_PODS_FILE")]
    pub pods_file: Option<PathBuf>,
    /// A cgroup whose quota is the node capacity and whose usage is the node usage.
    #[arg(long, env = "MPLB_NODE_CGROUP")]
    pub node_cgroup: Option<PathBuf>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "MPLB_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// Check values and build the sampler and sender configurations.
    pub fn build(&self) -> Result<(SamplerConfig, SenderConfig), AgentError> {
        if self.interval < Duration::from_millis(10) {
            return Err(AgentError::Config(
                "--interval must be at least 10ms".into(),
            ));
        }
        if self.timeout.is_zero() || self.max_backoff.is_zero() {
            return Err(AgentError::Config(
                "--timeout and --max-backoff must be positive".into(),
            ));
        }
        if !(self.server.starts_with("http://") || self.server.starts_with("https://")) {
            return Err(AgentError::Config(format!(
                "--server {:?} must be an http:// or https:// URL",
                self.server
            )));
        }
        check_name("--node-name", &self.node_name)?;
        let pods = match (&self.pods, &self.pods_file) {
            (Some(list), _) => PodSource::Local(parse_pods(list.split(','))?),
            (None, Some(file)) => {
                let text =
                    std::fs::read_to_string(file).map_err(|e| AgentError::read(file.clone(), e))?;
                PodSource::Local(parse_pods(
                    text.lines()
                        .map(|l| l.split('#').next().unwrap_or("").trim()),
                )?)
            }
            (None, None) => PodSource::Kubernetes {
                log_pods_dir: Some(self.log_pods_dir.clone()),
            },
        };
        let sampler = SamplerConfig {
            node_name: self.node_name.clone(),
            cgroup_root: self.cgroup_root.clone(),
            proc_root: self.proc_root.clone(),
            pods,
            node_cgroup: self.node_cgroup.as_deref().map(relative).transpose()?,
        };
        let sender = SenderConfig {
            server: self.server.clone(),
            timeout: self.timeout,
            max_backoff: self.max_backoff,
            interval: self.interval,
            token_file: self.token_file.clone(),
        };
        Ok((sampler, sender))
    }
}

/// Parse `name=path` entries (empty entries skipped).
pub fn parse_pods<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Vec<LocalPod>, AgentError> {
    let mut pods: Vec<LocalPod> = Vec::new();
    for entry in entries.map(str::trim).filter(|e| !e.is_empty()) {
        let (name, path) = entry
            .split_once('=')
            .ok_or_else(|| AgentError::Config(format!("pod entry {entry:?} is not name=path")))?;
        let name = name.trim();
        check_name("pod name", name)?;
        if pods.iter().any(|p| p.name == name) {
            return Err(AgentError::Config(format!("pod name {name:?} repeats")));
        }
        pods.push(LocalPod {
            name: name.to_string(),
            rel: relative(Path::new(path.trim()))?,
        });
    }
    if pods.is_empty() {
        return Err(AgentError::Config(
            "local mode needs at least one name=path".into(),
        ));
    }
    Ok(pods)
}

/// A cgroup path relative to the root: leading `/` stripped, no `..`.
fn relative(path: &Path) -> Result<PathBuf, AgentError> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(AgentError::Config(format!(
                    "cgroup path {} must stay under the cgroup root",
                    path.display()
                )));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(AgentError::Config(format!(
            "cgroup path {:?} is empty",
            path.display()
        )));
    }
    Ok(out)
}

fn check_name(what: &str, name: &str) -> Result<(), AgentError> {
    let bad = name.is_empty()
        || name.len() > mplb_wire::MAX_NAME_LEN
        || name.chars().any(|c| c.is_control() || c.is_whitespace());
    if bad {
        return Err(AgentError::Config(format!(
            "{what} {name:?} must be 1..={} bytes without whitespace",
            mplb_wire::MAX_NAME_LEN
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let mut all = vec![
            "host-agent",
            "--server",
            "http://127.0.0.1:9",
            "--node-name",
            "n1",
        ];
        all.extend_from_slice(args);
        Config::try_parse_from(all)
    }

    #[test]
    fn defaults_and_durations() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_millis(800));
        assert_eq!(c.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
        let (s, _) = c.build().unwrap();
        assert!(matches!(s.pods, PodSource::Kubernetes { .. }));
        let c = parse(&["--interval", "500ms", "--pods", "a=/lab/a, b=lab/b"]).unwrap();
        assert_eq!(c.interval, Duration::from_millis(500));
        let (s, _) = c.build().unwrap();
        let PodSource::Local(pods) = s.pods else {
            panic!("local")
        };
        assert_eq!(pods[0].rel, PathBuf::from("lab/a"));
        assert_eq!(pods[1].name, "b");
        assert!(parse(&["--interval", "soon"]).is_err());
    }

    #[test]
    fn rejects_bad_local_config() {
        for pods in ["a", "a=x,a=y", "a=../etc", "=x", "a b=x", "a=/"] {
            let c = parse(&["--pods", pods]).unwrap();
            assert!(c.build().is_err(), "{pods}");
        }
        let c = parse(&["--pods-file", "/nonexistent/pods"]).unwrap();
        let err = c.build().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/pods"), "{err}");
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            t.path(),
            "# lab\nweb-0=lab/n/web-0\n\ndb-0 = lab/n/db-0 # db\n",
        )
        .unwrap();
        let c = parse(&["--pods-file", t.path().to_str().unwrap()]).unwrap();
        let (s, _) = c.build().unwrap();
        assert!(matches!(s.pods, PodSource::Local(ref p) if p.len() == 2));
    }
}
