//! Test scaffolding for the Envoy end-to-end test: the wasm build, Envoy
//! started and stopped by the project's Envoy harness, a scriptable weight server, upstream
//! replicas that count what they serve, a keep-alive HTTP/1.1 client, and the
//! lab the tests drive ([`lab`]).
//! std only: small, and fast to compile on a busy machine.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;
pub mod lab;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use mplb_envoy_harness::{Bootstrap, Launch};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free loopback port below the kernel's ephemeral range (the harness's:
/// no outgoing connection can take it before the child binds it).
pub fn free_port() -> u16 {
    mplb_envoy_harness::free_port().unwrap()
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

/// An Envoy configuration for a listen and an admin address (picked at start).
pub type Config = Box<dyn Fn(SocketAddr, SocketAddr) -> Bootstrap>;

/// Envoy, found by the project's harness (`MPLB_ENVOY`, the scripts/setup.sh venv, PATH).
pub fn envoy_binary() -> PathBuf {
    mplb_envoy_harness::find_envoy().unwrap()
}

/// A running Envoy (the harness's; its process group is stopped on drop).
pub struct Envoy {
    inner: mplb_envoy_harness::Envoy,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

fn write_config(config: &Config, dir: &Path) -> (PathBuf, SocketAddr, SocketAddr) {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let path = dir.join("envoy.json");
    config(listen, admin).write(&path).unwrap();
    (path, listen, admin)
}

impl Envoy {
    /// Start Envoy with `config` on free ports and wait until its admin says LIVE.
    pub fn start(config: &Config, concurrency: u32) -> Envoy {
        let dir = tempfile::tempdir().unwrap();
        let (cfg_path, listen, admin) = write_config(config, dir.path());
        let log = dir.path().join("envoy.log");
        let mut launch = Launch::new(envoy_binary(), &cfg_path);
        launch.concurrency = concurrency;
        launch.base_id = Some(u32::from(listen.port()));
        launch.component_log_level = Some("wasm:info".into());
        let mut inner = launch.spawn(&log).unwrap();
        if let Err(e) = inner.wait_ready(admin, Duration::from_secs(30)) {
            panic!("envoy did not become ready: {e}");
        }
        Envoy {
            inner,
            listen,
            admin,
            log,
            _dir: dir,
        }
    }

    /// Start Envoy with a config it must refuse; returns whether it exited
    /// (stopped after 30 s if it does not) and its output.
    pub fn start_expecting_failure(config: &Config) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let (cfg_path, _, _) = write_config(config, dir.path());
        let log = dir.path().join("envoy.log");
        let mut launch = Launch::new(envoy_binary(), &cfg_path);
        launch.base_id = Some(u32::from(free_port()));
        let mut e = launch.spawn(&log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while e.check().is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let exited = e.check().is_err();
        e.stop();
        (exited, std::fs::read_to_string(&log).unwrap_or_default())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
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
