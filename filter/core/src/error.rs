//! The one error type of the filter core.

use mplb_wire::WireError;

/// Why something the filter was given could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The plugin configuration is unusable; names the field and the reason.
    #[error("bad configuration: field `{field}`: {reason}")]
    Config {
        /// The configuration key (`<config>`: the body itself).
        field: String,
        /// Why it was refused.
        reason: String,
    },
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

impl FilterError {
    /// The plugin configuration was refused: a [`WireError::Field`] names
    /// its field; any other error is about the body as a whole.
    pub fn config(e: WireError) -> Self {
        match e {
            WireError::Field { field, reason } => FilterError::Config { field, reason },
            other => FilterError::Config {
                field: "<config>".into(),
                reason: other.to_string(),
            },
        }
    }
}
