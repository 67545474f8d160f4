//! The topology file the weight server loads (`--topology FILE`, YAML or
//! JSON) and the lab writes: nodes with capacity, services with tenant, port,
//! fair share and aliases, and pods with node and address. The weight server
//! checks every rule on load (`weight_server::topology::file`); these types
//! fix the shape (unknown fields are refused) and the defaults.

use serde::{Deserialize, Serialize};

/// The namespace of a service that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// The nodes and their CPU capacity.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// The managed services.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// The replicas of the managed services.
    #[serde(default)]
    pub pods: Vec<PodEntry>,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Node name.
    pub name: String,
    /// Allocatable CPU in millicores (finite, > 0).
    pub capacity_millicores: f64,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// Short name, e.g. `profile`.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The party it belongs to (default: its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The port clients use.
    pub port: u16,
    /// Explicit fair share in millicores (default: its pods' requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fair_share_millicores: Option<f64>,
    /// Extra names besides `name`, `name.ns`, `name.ns.svc` and the FQDN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodEntry {
    /// Pod name (unique in the file).
    pub name: String,
    /// Its service: `name`, `name.namespace`, or any name of the service.
    pub service: String,
    /// Its node (a node of the file).
    pub node: String,
    /// `ip:port` it serves on.
    pub address: String,
    /// Its UID (default: the pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Whether it is ready (default true).
    #[serde(default = "default_ready")]
    pub ready: bool,
    /// Sum of its containers' CPU requests in millicores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_millicores: Option<f64>,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

fn default_ready() -> bool {
    true
}

impl TopologyFile {
    /// Decode the JSON form (the weight server also reads YAML, which is a
    /// superset; the shape and defaults are these either way).
    pub fn from_json(text: &str) -> Result<Self, crate::WireError> {
        serde_json::from_str(text).map_err(|e| crate::WireError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_fields_are_refused() {
        let t = TopologyFile::from_json(
            r#"{"nodes":[{"name":"n","capacity_millicores":1000}],
                "services":[{"name":"s","port":80}],
                "pods":[{"name":"s-0","service":"s","node":"n","address":"10.0.0.1:80"}]}"#,
        )
        .unwrap();
        assert_eq!(t.services[0].namespace, "default");
        assert!(t.pods[0].ready);
        assert_eq!(t.pods[0].uid, None);
        let e = TopologyFile::from_json(r#"{"nodes":[],"colour":"red"}"#).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn round_trips_without_the_defaults_written_out() {
        let t = TopologyFile {
            nodes: vec![NodeEntry {
                name: "n".into(),
                capacity_millicores: 500.0,
            }],
            services: vec![ServiceEntry {
                name: "s".into(),
                namespace: "lab".into(),
                tenant: None,
                port: 80,
                fair_share_millicores: Some(150.0),
                aliases: vec![],
            }],
            pods: vec![],
        };
        let text = serde_json::to_string(&t).unwrap();
        assert!(
            !text.contains("tenant") && !text.contains("aliases"),
            "{text}"
        );
        assert_eq!(TopologyFile::from_json(&text).unwrap(), t);
    }
}
