//! The one error type of the wire crate.

/// Why a body was rejected. The message is meant for logs and for the
/// `{"error": ...}` of a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body is bigger than the contract allows.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The contract's limit.
        limit: usize,
    },
    /// Not JSON, truncated, wrong types, unknown fields, non-UTF-8, too deep.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// Well-formed JSON that breaks a rule of the contract.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A configuration field is unusable (`<config>`: the body itself).
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field, as the JSON key.
        field: String,
        /// Why it was refused.
        reason: String,
    },
}

impl WireError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        WireError::Invalid(msg.into())
    }
}
