//! Pure mapping from Kubernetes Pods and Nodes to a [`Topology`] (no I/O, so
//! it is tested with plain objects).
//!
//! * Pod: skipped unless it has a service (label `app`, else its owner
//!   StatefulSet), a node (`spec.nodeName`), an IP (`status.podIP`), a port
//!   (annotation `mplb.io/port`, else the first declared container port) and
//!   is not finished (`Succeeded`/`Failed`). Ready = condition `Ready` is
//!   `True` and it is not being deleted. CPU request = Σ containers'
//!   `resources.requests.cpu`.
//! * Service: one per (namespace, service name); tenant from the pod label
//!   `mplb.io/tenant` (default: the namespace); fair share from the pod
//!   annotation `mplb.io/fair-share` (millicores, `1500` or `1500m`; default:
//!   none, i.e. the sum of its pods' requests); port = its first pod's port.
//!   Tenant and port come from its first pod in name order, the fair share
//!   from the first pod that has the annotation.
//! * Node: allocatable CPU (else capacity) in millicores; 0 when missing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as corev1;

use super::super::{Node, Pod, Service, Topology};
use super::KubeConfig;

/// Label naming a pod's tenant.
pub const TENANT_LABEL: &str = "mplb.io/tenant";
/// Annotation with a service's fair share in millicores.
pub const FAIR_SHARE_ANNOTATION: &str = "mplb.io/fair-share";
/// Annotation overriding a pod's serving port.
pub const PORT_ANNOTATION: &str = "mplb.io/port";

/// Parse a Kubernetes CPU quantity (`250m`, `1`, `0.5`, `2k`, `1e3`, `100u`)
/// into millicores. `None` for anything else, negatives and non-finite.
pub fn cpu_millicores(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    // `1e3` is an exponent; `1E` alone (exa) is not a number.
    let (num, suffix) = if suffix.is_empty() && num.ends_with(['e', 'E']) {
        (&num[..num.len() - 1], &q[num.len() - 1..])
    } else {
        (num, suffix)
    };
    let factor = match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let m = v * factor * 1e3;
    (m.is_finite() && m >= 0.0).then_some(m)
}

/// A fair-share annotation: millicores as `1500` or `1500m`.
pub fn fair_share_millicores(v: &str) -> Option<f64> {
    let v = v.trim();
    let n: f64 = v.strip_suffix('m').unwrap_or(v).parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// Allocatable CPU of a node in millicores (0 when missing or invalid).
pub fn node_millicores(node: &corev1::Node) -> f64 {
    let status = node.status.as_ref();
    let pick =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.and_then(|m| m.get("cpu"))
                .and_then(|q| cpu_millicores(&q.0))
        };
    pick(status.and_then(|s| s.allocatable.as_ref()))
        .or_else(|| pick(status.and_then(|s| s.capacity.as_ref())))
        .unwrap_or(0.0)
}

/// What a pod contributes, or why it is skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub service: String,
    pub node: String,
    pub address: SocketAddr,
    pub ready: bool,
    pub cpu_request_millicores: Option<f64>,
    pub tenant: Option<String>,
    pub fair_share_millicores: Option<f64>,
}

/// Extract the facts of one pod; `Err` says why it is not usable.
pub fn pod_facts(pod: &corev1::Pod) -> Result<PodFacts, &'static str> {
    let meta = &pod.metadata;
    let name = meta.name.clone().ok_or("no name")?;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let labels = meta.labels.as_ref();
    let annotations = meta.annotations.as_ref();
    let service = labels
        .and_then(|l| l.get("app"))
        .filter(|s| !s.is_empty())
        .cloned()
        .or_else(|| {
            meta.owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "StatefulSet")
                .map(|o| o.name.clone())
        })
        .ok_or("no `app` label and no owner StatefulSet")?;
    let spec = pod.spec.as_ref().ok_or("no spec")?;
    let node = spec.node_name.clone().ok_or("not scheduled")?;
    let status = pod.status.as_ref().ok_or("no status")?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Err("finished");
    }
    let ip: IpAddr = status
        .pod_ip
        .as_deref()
        .ok_or("no pod IP")?
        .parse()
        .map_err(|_| "bad pod IP")?;
    let port = match annotations.and_then(|a| a.get(PORT_ANNOTATION)) {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| "bad mplb.io/port annotation")?,
        None => spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .map(|p| p.container_port)
            .next()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("no container port and no mplb.io/port annotation")?,
    };
    let ready = meta.deletion_timestamp.is_none()
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
    let requests: Vec<Option<f64>> = spec
        .containers
        .iter()
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu"))
        .map(|q| cpu_millicores(&q.0))
        .collect();
    let cpu_request_millicores = if requests.is_empty() || requests.iter().any(Option::is_none) {
        None
    } else {
        Some(requests.into_iter().flatten().sum())
    };
    Ok(PodFacts {
        uid: meta.uid.clone().unwrap_or_else(|| name.clone()),
        name,
        namespace,
        service,
        node,
        address: SocketAddr::new(ip, port),
        ready,
        cpu_request_millicores,
        tenant: labels.and_then(|l| l.get(TENANT_LABEL)).cloned(),
        fair_share_millicores: annotations
            .and_then(|a| a.get(FAIR_SHARE_ANNOTATION))
            .and_then(|v| fair_share_millicores(v)),
    })
}

/// Build the topology from the watched objects.
pub fn topology(
    pods: &[Arc<corev1::Pod>],
    nodes: &[Arc<corev1::Node>],
    cfg: &KubeConfig,
) -> Topology {
    let mut topo = Topology::default();
    for node in nodes {
        if let Some(name) = &node.metadata.name {
            let capacity_millicores = node_millicores(node);
            topo.nodes.insert(
                name.clone(),
                Node {
                    name: name.clone(),
                    capacity_millicores,
                },
            );
        }
    }
    let mut facts: Vec<PodFacts> = pods
        .iter()
        .filter_map(|p| match pod_facts(p) {
            Ok(f) => Some(f),
            Err(why) => {
                tracing::debug!(pod = ?p.metadata.name, why, "pod skipped");
                None
            }
        })
        .collect();
    facts.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for f in facts {
        let fqdn = format!("{}.{}.svc.{}", f.service, f.namespace, cfg.cluster_domain);
        let svc = topo
            .services
            .entry(fqdn.clone())
            .or_insert_with(|| Service {
                name: f.service.clone(),
                namespace: f.namespace.clone(),
                fqdn: fqdn.clone(),
                tenant: f.tenant.clone().unwrap_or_else(|| f.namespace.clone()),
                port: f.address.port(),
                fair_share_millicores: f.fair_share_millicores,
                aliases: mplb_wire::default_aliases(&f.service, &f.namespace),
            });
        if svc.fair_share_millicores.is_none() {
            svc.fair_share_millicores = f.fair_share_millicores;
        }
        if topo.pods.contains_key(&f.name) {
            tracing::warn!(pod = %f.name, namespace = %f.namespace, "pod name already used in another namespace; skipped");
            continue;
        }
        topo.pods.insert(
            f.name.clone(),
            Pod {
                name: f.name,
                namespace: f.namespace,
                uid: f.uid,
                service: fqdn,
                node: f.node,
                address: f.address,
                ready: f.ready,
                cpu_request_millicores: f.cpu_request_millicores,
            },
        );
    }
    drop_ambiguous_aliases(&mut topo);
    topo
}

/// A short alias two services would both claim (`web` of namespaces `shop`
/// and `blog`) names neither: it is removed from both (logged, and counted
/// in `mplb_aliases_dropped`), so the table stays valid and clients use
/// `web.shop` or the FQDN.
fn drop_ambiguous_aliases(topo: &mut Topology) {
    let ambiguous = mplb_wire::ambiguous_names(topo.services.values().flat_map(|s| {
        s.aliases
            .iter()
            .chain(std::iter::once(&s.fqdn))
            .map(|a| (s.fqdn.as_str(), a.as_str()))
    }));
    if ambiguous.is_empty() {
        return;
    }
    for svc in topo.services.values_mut() {
        svc.aliases
            .retain(|a| !ambiguous.contains(&a.to_ascii_lowercase()));
    }
    for name in &ambiguous {
        tracing::warn!(alias = %name, "short alias claimed by services of several namespaces; dropped from all of them");
    }
    topo.dropped_aliases = ambiguous.into_iter().collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> corev1::Pod {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web", "mplb.io/tenant": "acme"},
                         "annotations": {"mplb.io/fair-share": "1500m"}},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "a", "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "250m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "0.5"}}}]},
            "status": {"podIP": "10.0.0.7", "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn cpu_quantities_parse_to_millicores() {
        for (q, m) in [
            ("250m", 250.0),
            ("1", 1000.0),
            ("0.5", 500.0),
            ("2k", 2e6),
            ("1e3", 1e6),
            ("100u", 0.1),
            (" 3 ", 3000.0),
            ("1.5", 1500.0),
            ("500000n", 0.5),
        ] {
            let got = cpu_millicores(q).unwrap_or(f64::NAN);
            assert!((got - m).abs() < 1e-9 * m.max(1.0), "{q}: {got}");
        }
        for q in ["", "m", "-1", "abc", "1x", "NaN", "inf", "1e999", "e3"] {
            assert_eq!(cpu_millicores(q), None, "{q}");
        }
        assert_eq!(fair_share_millicores("1500"), Some(1500.0));
        assert_eq!(fair_share_millicores("1500m"), Some(1500.0));
        assert_eq!(fair_share_millicores("-5"), None);
        assert_eq!(fair_share_millicores("lots"), None);
    }

    #[test]
    fn a_full_pod_maps_every_field() {
        let f = pod_facts(&pod(base())).unwrap();
        assert_eq!(f.name, "web-0");
        assert_eq!(f.namespace, "shop");
        assert_eq!(f.uid, "u-1");
        assert_eq!(f.service, "web");
        assert_eq!(f.node, "n1");
        assert_eq!(f.address, "10.0.0.7:8080".parse().unwrap());
        assert!(f.ready);
        assert_eq!(f.cpu_request_millicores, Some(750.0));
        assert_eq!(f.tenant.as_deref(), Some("acme"));
        assert_eq!(f.fair_share_millicores, Some(1500.0));
    }

    #[test]
    fn service_falls_back_to_the_owner_statefulset_and_port_to_the_annotation() {
        let mut v = base();
        v["metadata"]["labels"] = serde_json::json!({});
        v["metadata"]["ownerReferences"] = serde_json::json!([
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "x"}]);
        v["metadata"]["annotations"]["mplb.io/port"] = "9090".into();
        let f = pod_facts(&pod(v)).unwrap();
        assert_eq!(f.service, "db");
        assert_eq!(f.address.port(), 9090);
        assert_eq!(f.tenant, None);
    }

    #[test]
    fn unready_terminating_and_unusable_pods() {
        let mut v = base();
        v["status"]["conditions"][0]["status"] = "False".into();
        assert!(!pod_facts(&pod(v)).unwrap().ready);
        let mut v = base();
        v["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        assert!(!pod_facts(&pod(v)).unwrap().ready);
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 6] = [
            ("no pod IP", |v| {
                v["status"]["podIP"] = serde_json::Value::Null
            }),
            ("not scheduled", |v| {
                v["spec"]["nodeName"] = serde_json::Value::Null
            }),
            ("finished", |v| v["status"]["phase"] = "Succeeded".into()),
            ("bad pod IP", |v| v["status"]["podIP"] = "10.0.0".into()),
            ("bad mplb.io/port annotation", |v| {
                v["metadata"]["annotations"]["mplb.io/port"] = "http".into()
            }),
            ("no `app` label and no owner StatefulSet", |v| {
                v["metadata"]["labels"] = serde_json::json!({})
            }),
        ];
        for (why, edit) in cases {
            let mut v = base();
            edit(&mut v);
            assert_eq!(pod_facts(&pod(v)), Err(why));
        }
        let mut v = base();
        v["spec"]["containers"][1]["resources"]["requests"]["cpu"] = "lots".into();
        assert_eq!(pod_facts(&pod(v)).unwrap().cpu_request_millicores, None);
    }

    /// Two namespaces each with a service `web`: the short alias `web` would
    /// name both, so neither keeps it (the table would fail validation).
    #[test]
    fn an_ambiguous_short_alias_is_dropped_from_both_services() {
        let mut other = base();
        other["metadata"]["name"] = "web-9".into();
        other["metadata"]["namespace"] = "blog".into();
        let pods = vec![Arc::new(pod(base())), Arc::new(pod(other))];
        let t = topology(&pods, &[], &KubeConfig::default());
        let shop = &t.services["web.shop.svc.cluster.local"];
        let blog = &t.services["web.blog.svc.cluster.local"];
        assert_eq!(shop.aliases, vec!["web.shop", "web.shop.svc"]);
        assert_eq!(blog.aliases, vec!["web.blog", "web.blog.svc"]);
        assert_eq!(t.dropped_aliases, ["web"]);
    }

    #[test]
    fn topology_groups_pods_into_services_and_reads_node_capacity() {
        let node: corev1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "3500m"}, "capacity": {"cpu": "4"}}}))
        .unwrap();
        let bare: corev1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n2"}, "status": {"capacity": {"cpu": "2"}}}))
        .unwrap();
        let mut second = base();
        second["metadata"]["name"] = "web-1".into();
        second["metadata"]["annotations"] = serde_json::json!({});
        let pods = vec![Arc::new(pod(second)), Arc::new(pod(base()))];
        let t = topology(
            &pods,
            &[Arc::new(node), Arc::new(bare)],
            &KubeConfig::default(),
        );
        assert_eq!(t.nodes["n1"].capacity_millicores, 3500.0);
        assert_eq!(t.nodes["n2"].capacity_millicores, 2000.0);
        let svc = &t.services["web.shop.svc.cluster.local"];
        assert_eq!(svc.tenant, "acme");
        assert_eq!(svc.port, 8080);
        assert_eq!(svc.fair_share_millicores, Some(1500.0));
        assert_eq!(svc.aliases, vec!["web", "web.shop", "web.shop.svc"]);
        assert_eq!(t.pods.len(), 2);
        assert_eq!(t.pods["web-1"].service, "web.shop.svc.cluster.local");
        assert_eq!(t.fair_share("acme"), 1500.0);
    }
}
