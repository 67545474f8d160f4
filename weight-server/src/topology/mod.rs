//! The cluster model every policy reads: nodes, services (with their tenant
//! and fair share) and pods. Built from a file ([`file`](mod@file)) or from the
//! Kubernetes API ([`kube`]); published through a [`TopologyTx`] watch channel.

pub mod file;
pub mod kube;

use std::sync::Arc;

/// The newest topology; `None` until the source has synced once.
pub type TopologyRx = tokio::sync::watch::Receiver<Option<Arc<Topology>>>;
/// Sender side of [`TopologyRx`].
pub type TopologyTx = tokio::sync::watch::Sender<Option<Arc<Topology>>>;

/// The cluster model (a wire type: `GET /admin/state` carries it).
pub use mplb_wire::admin::cluster::{Node, Pod, Service, Topology};

/// Publish a topology snapshot.
pub fn publish(tx: &TopologyTx, topology: Topology) {
    tx.send_replace(Some(Arc::new(topology)));
}
