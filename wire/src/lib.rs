//! The v1 wire contracts of multiparty-lb, shared by the proxy-wasm filter
//! (wasm32-wasip1), the weight server, the host agent and the lab: the
//! weights table, host reports, proxy stats, the filter's plugin
//! configuration, the topology file ([`topology`]), the admin API's bodies
//! ([`admin`], the explain answer's balance figures in [`balance`]) and the
//! name rules ([`names`]).
//!
//! Every type here is plain serde JSON. Readers never trust a peer: each
//! contract has a `parse` that bounds the body size, decodes, and validates the
//! semantic rules (finite, non-negative numbers, unique names, parseable
//! addresses, size limits). A value that breaks a rule is rejected whole with a
//! [`WireError`] saying why; callers keep their last good state.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod balance;
mod error;
pub mod names;
mod plugin_config;
mod report;
#[cfg(not(target_arch = "wasm32"))]
pub mod scenario;
mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod topology;

pub use error::WireError;
pub use names::{NameClash, NameIndex, ambiguous_names, check_name, default_aliases};
pub use plugin_config::{MAX_CONFIG_BYTES, Mode, OVERRIDE_HEADER, PluginConfig};
pub use report::{HostReport, MAX_REPORT_BYTES, MAX_REPORT_PODS, PodCpu};
pub use table::{
    Endpoint, MAX_ENDPOINTS, MAX_NAME_LEN, MAX_SERVICES, MAX_TABLE_BYTES, ServiceWeights,
    WeightsTable,
};

/// A finite, non-negative number.
pub(crate) fn check_amount(what: &str, value: f64) -> Result<(), WireError> {
    if !value.is_finite() {
        return Err(WireError::invalid(format!("{what} is not finite")));
    }
    if value < 0.0 {
        return Err(WireError::invalid(format!("{what} is negative ({value})")));
    }
    Ok(())
}

/// Decode a bounded JSON body of type `T`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    limit: usize,
) -> Result<T, WireError> {
    if body.len() > limit {
        return Err(WireError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}
