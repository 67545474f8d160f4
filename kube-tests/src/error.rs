//! The crate's error type.

/// What can go wrong while running the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building, finding or starting a program, or preparing files.
    #[error("setup: {0}")]
    Setup(String),
    /// A process did not become ready in time; holds the tail of its log.
    #[error("{what} not ready within {secs} s; log tail:\n{log}")]
    NotReady {
        /// Which process.
        what: String,
        /// The time waited.
        secs: u64,
        /// The last lines of its log.
        log: String,
    },
    /// File system.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The Kubernetes API answered with an error.
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    /// An HTTP call (etcd, readiness) failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// A kubeconfig could not be read.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
