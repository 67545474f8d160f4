//! The harness's one error type.

use std::path::PathBuf;

/// Result with the harness's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong finding, configuring, running or asking Envoy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Envoy is not installed where it is looked for.
    #[error("Envoy not found: {0}; run `. scripts/setup.sh` or set MPLB_ENVOY")]
    NotFound(String),
    /// An I/O call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Envoy exited (or refused a configuration); the end of its output.
    #[error("Envoy {what}:\n{output}")]
    Envoy {
        /// What happened.
        what: String,
        /// The end of its log or output.
        output: String,
    },
    /// Waited too long.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The admin answered something unreadable.
    #[error("admin {addr}{path}: {reason}")]
    Admin {
        /// The admin address.
        addr: std::net::SocketAddr,
        /// The request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A configuration could not be written.
    #[error("write {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
