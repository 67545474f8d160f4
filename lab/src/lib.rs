//! multiparty-lb local lab: the whole system on one machine, no Kubernetes.
//!
//! Nodes are cgroup v1 subtrees with CPU quotas ([`cgroup`]); pods are
//! processes of the test application ([`app`], binary `lab-app`) placed in
//! per-pod cgroups; sidecars are real Envoys with the filter, routed the way
//! `render-istio` routes Istio ([`envoy`]); the real `weight-server` and one
//! real `host-agent` per node run beside them ([`stack`], found by
//! [`binaries`]). Scenarios
//! ([`scenario`]) are loaded with `hey` ([`load`]), sampled ([`measure`]) and
//! compared per policy ([`run`], each policy's [`outcome`], [`progress`]), with settle time and signal-to-weight
//! latency ([`convergence`]); results become a table, JSON, CSV and an SVG
//! plot ([`report`], [`plot`]); [`verdict`] judges committed runs against
//! the policy targets. `--quick` runs the end-to-end checks ([`quick`], through
//! [`weight_server_client`]).

#![warn(missing_docs)]

pub mod app;
pub mod bench;
pub mod binaries;
pub mod cgroup;
pub mod convergence;
pub mod envoy;
pub mod error;
pub mod events;
pub mod fairness;
pub mod load;
pub mod measure;
pub mod orca;
pub mod outcome;
pub mod plot;
pub mod procs;
pub mod progress;
pub mod quick;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stack;
pub mod summary;
pub mod thresholds;
pub mod validate_wasm;
pub mod verdict;
pub mod weight_server_client;

pub use error::{Error, Result};
