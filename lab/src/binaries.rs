//! Where the lab's executables and files are: the weight server, host agent,
//! test app, Envoy, hey and the wasm filter, found next to the running
//! executable or in a given directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the lab's executables and files are.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `weight-server` executable.
    pub weight_server: PathBuf,
    /// The `host-agent` executable (one process per node).
    pub host_agent: PathBuf,
    /// The `lab-app` executable: each pod, and each event hog.
    pub lab_app: PathBuf,
    /// The Envoy executable (see [`crate::envoy::find_envoy`]).
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
