//! multiparty-lb weight server: turns topology, per-pod CPU reports and
//! per-tenant fair shares into per-service endpoint weights, serves them as
//! the v1 weights table, and offers an admin API for operators.
//!
//! Layout: [`topology`] (file or kube), [`reports`] (EWMA, ages, CpuView),
//! [`policy`] (even, static, spare, optimal),
//! [`weights`] (versioned table, damping, dead band, drains), [`engine`]
//! (the state and the recompute round), [`api`] and [`admin`] (HTTP),
//! [`admission`] (shedding over-share tenants at the gateways when demand
//! exceeds capacity), [`auth`] (who may post reports), [`balance`]
//! (fairness and balance figures), [`calibration`] (per-pod request cost
//! for `optimal`, opt-in), [`leader`] (replicas on a Lease), [`persist`] (admin state on
//! disk), [`metrics`], [`render`] (`render-istio`), [`config`] (flags),
//! [`server`] ([`serve`]: the whole server on a bound listener).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod admission;
pub mod api;
pub mod auth;
pub mod balance;
pub mod calibration;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod persist;
pub mod policy;
pub mod render;
pub mod reports;
pub mod server;
pub mod state;
pub mod topology;
pub mod weights;

pub use error::{Error, Result};
pub use server::{Server, serve};
