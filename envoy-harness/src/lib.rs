//! The one Envoy harness of multiparty-lb: typed builders for Envoy bootstrap
//! configurations (listeners, clusters, per-pod routes, the wasm filter with
//! its configuration, stateful session), finding the Envoy binary, starting
//! Envoy in its own process group and stopping it, reading its admin (ready,
//! stats) and validating a configuration (`envoy --mode validate`). The lab,
//! the filter's Envoy end-to-end test, `build-and-push.sh`'s load check (via
//! `mplb-lab validate-wasm`) and the filter benchmark all use it.
// Unsafe is confined to `process` (signals to Envoy's process group), each
// block with a `SAFETY:` comment.
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]
#![warn(missing_docs)]

pub mod admin;
pub mod binary;
pub mod bootstrap;
mod error;
pub mod filters;
pub mod ports;
pub mod process;

pub use binary::{find_envoy, real_binary, validate};
pub use bootstrap::{
    Action, Bootstrap, Cluster, HeaderMatch, LbPolicy, Listener, PathMatch, Route, VirtualHost,
    per_pod_routes,
};
pub use error::{Error, Result};
pub use filters::{HttpFilter, WasmFilter};
pub use ports::free_port;
pub use process::{Envoy, Launch};

/// The header the filter stamps with the chosen pod (subset mode).
pub const ENDPOINT_HEADER: &str = "x-lb-endpt";
/// The header carrying the chosen host in session mode (`stateful_session`).
pub const SESSION_HEADER: &str = "x-lb-session";
