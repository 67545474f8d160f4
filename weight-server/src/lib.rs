//! multiparty-lb weight server: turns topology, per-pod CPU reports and
//! per-tenant fair shares into per-service endpoint weights, serves them as
//! the v1 weights table, and offers an admin API for operators.

pub mod error;
pub mod policy;
pub mod topology;

pub use error::{Error, Result};
