//! The one error type of the filter core.

use mplb_wire::WireError;

/// Why something the filter was given could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// A weights table (from the server or from shared data) was rejected.
    #[error("weights table rejected: {0}")]
    Table(#[from] WireError),
    /// A value in shared data could not be decoded.
    #[error("shared data key {key:?} holds an unreadable value")]
    Shared {
        /// The shared-data key.
        key: &'static str,
    },
    /// A call to the weight server could not be dispatched or failed.
    #[error("weight server call failed: {0}")]
    Call(String),
}
