//! Child processes that die with their handle: each runs in its own process
//! group with output in a log file; dropping the handle kills the group.
//! Also: finding binaries, picking loopback ports, waiting for readiness.

use std::ffi::CString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A running child; killed (its whole process group) on drop.
#[derive(Debug)]
pub struct Proc {
    /// Name for logs and errors; also the log file's stem.
    pub name: String,
    /// The file receiving the child's stdout and stderr.
    pub log: PathBuf,
    child: std::process::Child,
}

impl Proc {
    /// Start `cmd` as `name`, stdout+stderr to `log_dir/<name>.log`.
    pub fn spawn(name: &str, cmd: Command, log_dir: &Path) -> Result<Self> {
        Self::spawn_in(name, cmd, log_dir, &[])
    }

    /// Like [`Proc::spawn`], but the child joins the cgroups whose
    /// `cgroup.procs` files are given before it execs, so none of its work
    /// (nor any process it starts) runs outside them.
    pub fn spawn_in(
        name: &str,
        mut cmd: Command,
        log_dir: &Path,
        cgroup_procs: &[PathBuf],
    ) -> Result<Self> {
        let files: Vec<CString> = cgroup_procs
            .iter()
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Process {
                name: name.into(),
                reason: format!("cgroup path: {e}"),
            })?;
        if !files.is_empty() {
            // SAFETY: the hook runs between fork and exec and only calls
            // open/write/close on paths prepared before the fork (no allocation).
            unsafe {
                cmd.pre_exec(move || {
                    for f in &files {
                        let fd = libc::open(f.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // "0" moves the writing process (cgroup v1 and v2).
                        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                        let err = std::io::Error::last_os_error();
                        libc::close(fd);
                        if n != 1 {
                            return Err(err);
                        }
                    }
                    Ok(())
                });
            }
        }
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).map_err(|e| Error::io("create log", &log, e))?;
        let err = out.try_clone().map_err(|e| Error::io("dup log", &log, e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd.spawn().map_err(|e| Error::Process {
            name: name.into(),
            reason: format!("spawn {:?}: {e}", cmd.get_program()),
        })?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(Proc {
            name: name.into(),
            log,
            child,
        })
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Fail if the process has exited, quoting the end of its log.
    pub fn check(&mut self) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(Error::Process {
                name: self.name.clone(),
                reason: format!(
                    "exited ({status}); last log lines:\n{}",
                    tail(&self.log, 15)
                ),
            });
        }
        Ok(())
    }

    /// Kill the process group now and reap the child.
    pub fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: plain kill(2) on the child's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: as above; the group may already be gone (ESRCH is fine).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// Wait for the process to exit on its own, up to `timeout`, without
    /// blocking the runtime (so a signal can still end the run).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!("{} to exit", self.name)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An executable named `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Hands out loopback ports: consecutive ones from a base (each checked
/// free, refusing a taken one), or kernel-chosen ones with base 0.
#[derive(Debug)]
pub struct Ports {
    next: u16,
    /// Ports handed out (base 0): the kernel may offer a released port
    /// again, and two processes of one stack must not get the same one.
    given: Vec<u16>,
}

impl Ports {
    /// Ports from `base` upwards, or kernel-chosen ones when `base` is 0.
    pub fn new(base: u16) -> Self {
        Ports {
            next: base,
            given: Vec::new(),
        }
    }

    /// Take the next port.
    pub fn take(&mut self) -> Result<SocketAddr> {
        if self.next == 0 {
            for _ in 0..64 {
                let addr = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| Error::Precondition(format!("no free loopback port: {e}")))?;
                if !self.given.contains(&addr.port()) {
                    self.given.push(addr.port());
                    return Ok(addr);
                }
            }
            return Err(Error::Precondition(
                "the kernel kept offering ports already handed out".into(),
            ));
        }
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], self.next));
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| Error::Precondition("ran out of ports above --base-port".into()))?;
        TcpListener::bind(addr).map_err(|e| {
            Error::Precondition(format!(
                "port {addr} is taken ({e}); stop what holds it or pick another --base-port (0 = any free)"
            ))
        })?;
        Ok(addr)
    }
}

/// Poll `url` until it answers 2xx, the deadline passes, or `alive` says the
/// process serving it died.
pub async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        if let Ok(resp) = client.get(url).timeout(Duration::from_secs(1)).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(url.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_proc_kills_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30; wait"]);
        let mut p = Proc::spawn("sleeper", cmd, dir.path()).unwrap();
        let pid = p.pid() as i32;
        assert!(p.alive());
        drop(p);
        // Killed orphans linger as zombies until init reaps them: wait for that.
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only probes whether the group exists.
        while unsafe { libc::kill(-pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        let rc = unsafe { libc::kill(-pid, 0) };
        assert_eq!(rc, -1, "process group {pid} still exists");
    }

    #[test]
    fn a_taken_port_is_refused_with_a_clear_message() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let err = Ports::new(port).take().unwrap_err();
        assert!(err.to_string().contains("is taken"), "{err}");
        assert_ne!(Ports::new(0).take().unwrap().port(), 0);
        // Free ports are never handed out twice by one `Ports`.
        let mut free = Ports::new(0);
        let mut seen: Vec<u16> = (0..200).map(|_| free.take().unwrap().port()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 200);
    }

    #[tokio::test]
    async fn check_reports_an_early_exit_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom-reason; exit 3"]);
        let mut p = Proc::spawn("dies", cmd, dir.path()).unwrap();
        p.wait_exit(Duration::from_secs(5)).await.unwrap();
        let err = p.check().unwrap_err().to_string();
        assert!(err.contains("boom-reason"), "{err}");
    }
}
