//! Topology from a YAML or JSON file: the shape is
//! [`mplb_wire::topology::TopologyFile`] (the lab writes the same type). The file lists nodes with capacity, services with tenant, port, fair share
//! and aliases, and pods with node and address. Every rule is checked on
//! load; a bad file fails with a message naming the file and the rule.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use mplb_wire::topology::TopologyFile;
use mplb_wire::{NameIndex, default_aliases};

use super::{Node, Pod, Service, Topology};
use crate::{Error, Result};

/// Largest topology file accepted.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Read and check a topology file (YAML, or JSON which YAML also reads).
pub fn load(path: &Path, cluster_domain: &str) -> Result<Topology> {
    let err = |reason: String| Error::TopologyFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes exceed the limit of {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse(&text, cluster_domain).map_err(err)
}

/// Parse topology text; the error is the reason, without the file name.
pub fn parse(text: &str, cluster_domain: &str) -> std::result::Result<Topology, String> {
    let trimmed = text.trim_start();
    let file: TopologyFile = if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?
    } else {
        serde_norway::from_str(text).map_err(|e| format!("malformed YAML: {e}"))?
    };
    build(file, cluster_domain)
}

fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    mplb_wire::check_name(what, name).map_err(|e| e.to_string())
}

fn check_amount(what: &str, v: f64) -> std::result::Result<(), String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{what} is {v}, not a finite non-negative number"));
    }
    Ok(())
}

fn build(file: TopologyFile, cluster_domain: &str) -> std::result::Result<Topology, String> {
    let mut topo = Topology::default();
    for n in file.nodes {
        check_name("node", &n.name)?;
        check_amount(
            &format!("capacity of node {:?}", n.name),
            n.capacity_millicores,
        )?;
        if n.capacity_millicores == 0.0 {
            return Err(format!("capacity of node {:?} is 0", n.name));
        }
        let node = Node {
            name: n.name.clone(),
            capacity_millicores: n.capacity_millicores,
        };
        if topo.nodes.insert(n.name.clone(), node).is_some() {
            return Err(format!("node {:?} repeats", n.name));
        }
    }
    // Short name, and name.namespace, both resolve a pod's `service` field.
    let mut by_ref: HashMap<String, String> = HashMap::new();
    let mut names: NameIndex<String> = NameIndex::default();
    for s in file.services {
        check_name("service", &s.name)?;
        check_name("namespace", &s.namespace)?;
        if let Some(f) = s.fair_share_millicores {
            check_amount(&format!("fair share of service {:?}", s.name), f)?;
        }
        let fqdn = format!("{}.{}.svc.{cluster_domain}", s.name, s.namespace);
        let mut aliases = default_aliases(&s.name, &s.namespace);
        for a in s.aliases {
            check_name("alias", &a)?;
            if !aliases.contains(&a) && a != fqdn {
                aliases.push(a);
            }
        }
        // Host names are case-insensitive: the filter matches them so, and
        // the weights table rejects names that clash in any mix of case.
        for name in aliases.iter().chain(std::iter::once(&fqdn)) {
            names.insert(name, fqdn.clone()).map_err(|c| {
                format!(
                    "name {:?} belongs to both {:?} and {:?}",
                    c.name, c.first, c.second
                )
            })?;
        }
        by_ref.insert(s.name.clone(), fqdn.clone());
        by_ref.insert(format!("{}.{}", s.name, s.namespace), fqdn.clone());
        let service = Service {
            tenant: s.tenant.unwrap_or_else(|| s.name.clone()),
            name: s.name,
            namespace: s.namespace,
            fqdn: fqdn.clone(),
            port: s.port,
            fair_share_millicores: s.fair_share_millicores,
            aliases,
        };
        topo.services.insert(fqdn, service);
    }
    let mut uids: BTreeMap<String, String> = BTreeMap::new();
    for p in file.pods {
        check_name("pod", &p.name)?;
        let fqdn = by_ref
            .get(&p.service)
            .or_else(|| names.get(&p.service))
            .ok_or_else(|| format!("pod {:?} names unknown service {:?}", p.name, p.service))?
            .clone();
        if !topo.nodes.contains_key(&p.node) {
            return Err(format!("pod {:?} names unknown node {:?}", p.name, p.node));
        }
        let address: SocketAddr = p
            .address
            .parse()
            .map_err(|_| format!("address {:?} of pod {:?} is not ip:port", p.address, p.name))?;
        if let Some(r) = p.cpu_request_millicores {
            check_amount(&format!("cpu request of pod {:?}", p.name), r)?;
        }
        let uid = p.uid.unwrap_or_else(|| p.name.clone());
        check_name("uid", &uid)?;
        if let Some(prev) = uids.insert(uid.clone(), p.name.clone()) {
            return Err(format!(
                "uid {uid:?} of pod {:?} repeats (pod {prev:?})",
                p.name
            ));
        }
        let namespace = topo
            .services
            .get(&fqdn)
            .map(|s| s.namespace.clone())
            .unwrap_or_default();
        let pod = Pod {
            name: p.name.clone(),
            namespace,
            uid,
            service: fqdn,
            node: p.node,
            address,
            ready: p.ready,
            cpu_request_millicores: p.cpu_request_millicores,
        };
        if topo.pods.insert(p.name.clone(), pod).is_some() {
            return Err(format!("pod {:?} repeats", p.name));
        }
    }
    Ok(topo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
nodes:
  - {name: node-a, capacity_millicores: 2000}
  - {name: node-b, capacity_millicores: 4000}
services:
  - {name: profile, tenant: hotel, port: 8081, fair_share_millicores: 1500, aliases: [prof]}
  - {name: geo, namespace: hotel, port: 8083}
pods:
  - {name: profile-0, service: profile, node: node-a, address: "127.0.0.1:9001"}
  - {name: profile-1, service: profile, node: node-b, address: "127.0.0.1:9002", ready: false}
  - {name: geo-0, service: geo.hotel, node: node-b, address: "[::1]:9003", uid: u-geo-0}
"#;

    #[test]
    fn parses_yaml_with_defaults() {
        let t = parse(GOOD, "cluster.local").unwrap();
        assert_eq!(t.nodes.len(), 2);
        let p = &t.services["profile.default.svc.cluster.local"];
        assert_eq!(p.tenant, "hotel");
        assert_eq!(
            p.aliases,
            vec!["profile", "profile.default", "profile.default.svc", "prof"]
        );
        let g = &t.services["geo.hotel.svc.cluster.local"];
        assert_eq!(g.tenant, "geo");
        assert_eq!(t.pods["profile-0"].uid, "profile-0");
        assert_eq!(t.pods["geo-0"].uid, "u-geo-0");
        assert_eq!(t.pods["geo-0"].namespace, "hotel");
        assert!(!t.pods["profile-1"].ready);
        assert_eq!(t.fair_share("hotel"), 1500.0);
    }

    #[test]
    fn parses_json_too() {
        let json = r#"{"nodes":[{"name":"n","capacity_millicores":1000}],
            "services":[{"name":"s","port":80}],
            "pods":[{"name":"s-0","service":"s","node":"n","address":"10.0.0.1:80"}]}"#;
        let t = parse(json, "example.org").unwrap();
        assert!(t.services.contains_key("s.default.svc.example.org"));
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        let cases = [
            (
                "unknown node",
                GOOD.replace("node: node-a", "node: node-z"),
                "unknown node",
            ),
            (
                "bad address",
                GOOD.replace("127.0.0.1:9001", "localhost"),
                "not ip:port",
            ),
            (
                "unknown service",
                GOOD.replace("service: geo.hotel", "service: nope"),
                "unknown service",
            ),
            (
                "negative capacity",
                GOOD.replace("capacity_millicores: 2000", "capacity_millicores: -1"),
                "capacity",
            ),
            (
                "duplicate pod",
                GOOD.replace("name: geo-0", "name: profile-0"),
                "repeats",
            ),
            (
                "unknown field",
                GOOD.replace("port: 8083", "port: 8083, colour: red"),
                "colour",
            ),
            (
                "alias clash",
                GOOD.replace("aliases: [prof]", "aliases: [geo]"),
                "belongs to both",
            ),
            (
                "alias clash differing in case",
                GOOD.replace("aliases: [prof]", "aliases: [GEO]"),
                "belongs to both",
            ),
            ("not yaml", "nodes: [".to_string(), "malformed YAML"),
        ];
        for (what, text, needle) in cases {
            let err = parse(&text, "cluster.local").expect_err(what);
            assert!(err.contains(needle), "{what}: {err}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topo.yaml");
        std::fs::write(&path, "nodes: {").unwrap();
        let err = load(&path, "cluster.local").unwrap_err().to_string();
        assert!(err.contains("topo.yaml"), "{err}");
    }
}
