//! The one error type of the lab.

use std::path::PathBuf;

/// Everything that can stop a lab run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A precondition of the machine is not met (cgroups, ports, binaries).
    #[error("cannot start the lab: {0}")]
    Precondition(String),
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation, e.g. `read` or `create`.
        what: &'static str,
        /// The file or directory it was done on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A child process could not be started or died early.
    #[error("process {name}: {reason}")]
    Process {
        /// The process's name in the lab (`gateway`, `frontend-0`, ...).
        name: String,
        /// What went wrong, e.g. the spawn error or the tail of its log.
        reason: String,
    },
    /// An HTTP exchange with a lab component failed.
    #[error("http {url}: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport or decoding error, or a refusal's status and body.
        reason: String,
    },
    /// A component did not become ready in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Load generator output could not be read.
    #[error("load generator: {0}")]
    Load(String),
    /// Results could not be written.
    #[error("results: {0}")]
    Results(String),
    /// A scenario file is unusable (the message names the field).
    #[error("{0}")]
    Scenario(String),
    /// The run was interrupted by a signal.
    #[error("interrupted by a signal")]
    Interrupted,
}

impl Error {
    /// Wrap an I/O error with what was being done and where.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn http(url: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Http {
            url: url.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result with the lab's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
