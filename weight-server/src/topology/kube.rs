//! Topology from the Kubernetes API (Pods and Nodes watched with kube). Owned
//! by the policy/kube engineer. (Initial version: signatures only.)

use super::TopologyTx;

/// Where and what to watch.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// Label selector of managed pods, e.g. `mplb.io/managed=true`.
    pub managed_label: String,
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
    /// Suffix of service FQDNs.
    pub cluster_domain: String,
}

impl Default for KubeConfig {
    fn default() -> Self {
        Self {
            managed_label: "mplb.io/managed=true".to_string(),
            namespaces: Vec::new(),
            cluster_domain: "cluster.local".to_string(),
        }
    }
}

/// Watch Pods and Nodes and publish a fresh topology on every change after
/// the initial sync.
pub async fn run(client: kube::Client, cfg: KubeConfig, tx: TopologyTx) -> crate::Result<()> {
    let _ = (client, cfg, tx);
    Err(crate::Error::Topology("kube discovery not implemented yet".into()))
}
