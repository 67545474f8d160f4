//! The multiparty-lb host agent: one per node. It reads each pod's cumulative
//! CPU from the cgroup tree (v1 or v2; cgroupfs or systemd kubelet driver),
//! the node's capacity and usage, turns deltas into millicores, and pushes a
//! [`mplb_wire::HostReport`] to the weight server every interval.
//!
//! Modules: [`cgroup`] (layouts and files), [`discovery`] (pod cgroups),
//! [`podnames`] (names from `/var/log/pods`), [`node`] (capacity and usage),
//! [`sampler`] (rates), [`sender`] (push with backoff), [`agent`] (the loop),
//! [`config`] (flags), [`clock`] (time as an input), [`fixture`] (fake trees).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod cgroup;
pub mod clock;
pub mod config;
pub mod discovery;
mod error;
pub mod fixture;
pub mod node;
pub mod podnames;
pub mod sampler;
pub mod sender;

pub use error::AgentError;
