//! Test scaffolding for the Envoy end-to-end test: the wasm build, Envoy as a
//! child process (killed on drop), a scriptable weight server, upstream
//! replicas that count what they serve, and a keep-alive HTTP/1.1 client.
//! std only: small, and fast to compile on a busy machine.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cargo target dir this test was built into.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/debug/deps/envoy_e2e-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// Build the filter wasm once per test process; returns its path.
/// `MPLB_FILTER_WASM=<file>` tests that module instead (e.g. the `wasm-opt`
/// output that ships, or an earlier build).
pub fn filter_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        if let Ok(p) = std::env::var("MPLB_FILTER_WASM") {
            return PathBuf::from(p);
        }
        let target = target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "mplb-filter", "--target", "wasm32-wasip1"])
            .args(["--profile", "wasm-release"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the wasm (is rustup target wasm32-wasip1 installed? scripts/setup.sh does it)");
        assert!(status.success(), "building the filter wasm failed");
        let wasm = target.join("wasm32-wasip1/wasm-release/mplb_filter.wasm");
        assert!(wasm.exists(), "{} missing after build", wasm.display());
        wasm
    })
    .clone()
}

/// Envoy: `MPLB_ENVOY`, else the scripts/setup.sh venv, else `envoy` on PATH.
pub fn envoy_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MPLB_ENVOY") {
        return PathBuf::from(p);
    }
    if let Ok(home) = std::env::var("HOME") {
        let p = Path::new(&home).join(".cache/mplb/venv/bin/envoy");
        if p.exists() {
            return p;
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("envoy").exists() {
                return dir.join("envoy");
            }
        }
    }
    panic!(
        "Envoy not found: run scripts/setup.sh (installs Envoy 1.40 into ~/.cache/mplb/venv) or set MPLB_ENVOY"
    );
}

/// A running Envoy, killed on drop.
pub struct Envoy {
    child: Child,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Start Envoy with `config` (YAML, `{LISTEN}`/`{ADMIN}` substituted) and
    /// wait until its admin says LIVE.
    pub fn start(config: &str, concurrency: u32) -> Envoy {
        let dir = tempfile::tempdir().unwrap();
        let (listen_port, admin_port) = (free_port(), free_port());
        let config = config
            .replace("{LISTEN}", &listen_port.to_string())
            .replace("{ADMIN}", &admin_port.to_string());
        let cfg_path = dir.path().join("envoy.yaml");
        std::fs::write(&cfg_path, config).unwrap();
        let log = dir.path().join("envoy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&cfg_path)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--base-id", &(u32::from(listen_port)).to_string()])
            .args(["-l", "warning", "--component-log-level", "wasm:info"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start envoy");
        let envoy = Envoy {
            child,
            listen: SocketAddr::from(([127, 0, 0, 1], listen_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = http::Client::connect(envoy.admin)
                && let Ok((200, body)) = c.get("admin", "/ready", &[])
                && body.trim() == "LIVE"
            {
                return envoy;
            }
            assert!(
                Instant::now() < deadline,
                "envoy did not become ready:\n{}",
                envoy.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start Envoy with a config it must refuse; returns its output once it
    /// exited (killed after 30 s if it does not).
    pub fn start_expecting_failure(config: &str) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = config
            .replace("{LISTEN}", &free_port().to_string())
            .replace("{ADMIN}", &free_port().to_string());
        let cfg_path = dir.path().join("envoy.yaml");
        std::fs::write(&cfg_path, config).unwrap();
        let mut child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&cfg_path)
            .args(["--concurrency", "1", "--base-id", &free_port().to_string()])
            .args(["-l", "warning"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start envoy");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let exited = child.try_wait().unwrap().is_some();
        if !exited {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (exited, text)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `cond` holds, polling every 50 ms, or panic with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is something listening on `addr`?
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
