//! The one error type of the weight server library.

use std::path::PathBuf;

/// Everything that can go wrong in the weight server library. Add variants at
/// the end; keep messages meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The topology file cannot be read or breaks a rule.
    #[error("topology file {path}: {reason}")]
    TopologyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The topology (from any source) breaks a rule.
    #[error("topology: {0}")]
    Topology(String),
    /// A policy could not decide, or built an invalid table.
    #[error("policy: {0}")]
    Policy(String),
    /// The LP solver failed.
    #[error("LP solver: {0}")]
    Solver(String),
    /// The admin state file cannot be read, parsed or written.
    #[error("state file {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A Kubernetes API call failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// An I/O call failed (binding, accepting, reading).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
