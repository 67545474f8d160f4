//! The one error type of the filter crate.

use mplb_wire::WireError;

/// Why something the filter was given could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The plugin configuration is unusable; names the field and the reason.
    #[error("bad configuration: field `{field}`: {reason}")]
    Config { field: String, reason: String },
    /// A weights table (from the server or from shared data) was rejected.
    #[error("weights table rejected: {0}")]
    Table(#[from] WireError),
    /// A value in shared data could not be decoded.
    #[error("shared data key {key:?} holds an unreadable value")]
    Shared { key: &'static str },
    /// A call to the weight server could not be dispatched or failed.
    #[error("weight server call failed: {0}")]
    Call(String),
}

impl FilterError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FilterError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
