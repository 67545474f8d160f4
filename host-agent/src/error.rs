//! The one error type of the host agent library.

use std::path::PathBuf;

/// Everything that can go wrong while sampling or pushing.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A cgroup or proc file could not be read (missing, unreadable, vanished).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not what the kernel writes.
    #[error("malformed {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        reason: String,
    },
    /// No usable cgroup hierarchy under the root.
    #[error(
        "no cgroup CPU accounting found under {0} (need cgroup v2 with cgroup.controllers, or v1 cpuacct)"
    )]
    NoCgroup(PathBuf),
    /// A bad command-line or file configuration.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The report we built breaks the wire contract (a bug or a hostile name).
    #[error("report rejected by the wire contract: {0}")]
    Wire(#[from] mplb_wire::WireError),
    /// Transport failure talking to the weight server.
    #[error("request to {url} failed: {reason}")]
    Http {
        /// The URL called.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The weight server answered with a non-2xx status.
    #[error("server answered {status}: {reason}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `{"error": ...}` or body.
        reason: String,
    },
}

impl AgentError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AgentError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
