//! The one error type of the weight server library.

use std::path::PathBuf;

/// Everything that can go wrong in the weight server library. Add variants at
/// the end; keep messages meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("topology file {path}: {reason}")]
    TopologyFile { path: PathBuf, reason: String },
    #[error("topology: {0}")]
    Topology(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("LP solver: {0}")]
    Solver(String),
    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
