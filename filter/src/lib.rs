//! `mplb-filter`: the multiparty-lb proxy-wasm HTTP filter.
//!
//! Role: in every Envoy sidecar, poll the weight server for the versioned
//! weights table (one Wasm VM per period, chosen by a shared-data lease), and
//! per outbound request pick a destination pod by weight and stamp it
//! (`x-lb-endpt: <pod>` for subset routing, or the stateful-session header
//! `base64(ip:port)`), failing open when there is no fresh table.
//!
//! Layout: the logic lives in plain modules that never touch the proxy-wasm ABI
//! and run against the [`host::Host`] trait (tested natively with a mock):
//! [`config`], [`lease`], [`table_store`], [`index`], [`route`], [`stats`],
//! [`poller`], [`vm`], [`inflight`]. The proxy-wasm callbacks are thin glue in `glue`, over
//! the ABI's host calls in `abi` (no SDK), both compiled only for `wasm32`.

pub mod config;
mod error;
pub mod fasthash;
pub mod host;
pub mod index;
pub mod inflight;
pub mod lease;
pub mod poller;
pub mod route;
pub mod sample;
pub mod stats;
pub mod table_store;
pub mod vm;

#[cfg(target_arch = "wasm32")]
mod abi;
#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(test)]
mod mock;

pub use config::{Config, Mode};
pub use error::FilterError;
pub use host::{CallResponse, Host, Level};
pub use vm::{Edits, Stamped, VmFilter};
