//! `mplb-filter-core`: every decision of the multiparty-lb proxy-wasm filter.
//!
//! Role: in every Envoy sidecar, poll the weight server for the versioned
//! weights table (one Wasm VM per period, chosen by a shared-data lease), and
//! per outbound request pick a destination pod by weight (smooth weighted
//! round robin) and stamp it
//! (`x-lb-endpt: <pod>` for subset routing, or the stateful-session header
//! `base64(ip:port)`, or the override header `ip:port`), failing open when
//! there is no fresh table. At an entry gateway (`admission: true`) it
//! first sheds the table's `admit` share of a service's requests with a 503
//! ([`admission`]).
//!
//! Layout: nothing here touches the proxy-wasm ABI. Everything asked of the
//! host goes through [`host::Host`] and [`host::HttpHost`]
//! (`mplb-proxy-abi` implements them; tests use a mock), so a native test
//! drives whole requests. [`plugin::Plugin`] has a method per exported
//! callback, which the cdylib shim (`mplb-filter`) calls; below it
//! [`vm`], [`lease`], [`table_store`], [`index`], [`route`], [`schedule`]
//! (the pick: smooth weighted round robin), [`admission`] (the shed
//! decision: a credit per service), [`poller`].
//! The plugin configuration is `mplb_wire::PluginConfig`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
mod error;
pub mod fasthash;
pub mod host;
pub mod index;
pub mod lease;
pub mod plugin;
pub mod poller;
pub mod route;
pub mod schedule;
pub mod table_store;
pub mod vm;

#[cfg(test)]
mod mock;

pub use error::FilterError;
pub use host::{Buffer, CallResponse, Host, HttpHost, Level, Map, SharedError};
pub use mplb_wire::{Mode, PluginConfig};
pub use plugin::{Next, Plugin};
pub use vm::{Edits, Stamped, VmFilter};
