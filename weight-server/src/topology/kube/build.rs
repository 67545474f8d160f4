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
//!   none, i.e. the sum of its pods' requests). Tenant comes from its first
//!   pod in name order, the fair share from the first pod that has the
//!   annotation.
//! * Port: when a Kubernetes Service of the same name exists in the pod's
//!   namespace, the service's port is its first `spec.ports` entry and each
//!   endpoint's port is that entry's `targetPort` (a number, or a container
//!   port of that name; a pod without it is skipped), as Kubernetes routes
//!   it. Without a Service (or with the pod annotation `mplb.io/port`), the
//!   pod's own port as above, and the service's port is its first pod's.
//!   See [`service_ports`].
//! * Node: allocatable CPU (else capacity) in millicores; 0 when missing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

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
    /// The pod's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID.
    pub uid: String,
    /// FQDN of its service.
    pub service: String,
    /// The node it runs on.
    pub node: String,
    /// Its IP and port (the port settled against its Service later).
    pub address: SocketAddr,
    /// Whether it is ready.
    pub ready: bool,
    /// Sum of its containers' CPU requests, when known.
    pub cpu_request_millicores: Option<f64>,
    /// Its tenant from the `mplb.io/tenant` label, if set.
    pub tenant: Option<String>,
    /// Its fair share from the `mplb.io/fair-share` annotation, if set.
    pub fair_share_millicores: Option<f64>,
    /// The port came from the `mplb.io/port` annotation (a Service's
    /// `targetPort` does not override it).
    pub port_annotated: bool,
    /// Named container ports (`name` → port), to resolve a Service's
    /// named `targetPort`.
    pub named_ports: BTreeMap<String, u16>,
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
    let annotated = annotations.and_then(|a| a.get(PORT_ANNOTATION));
    let named_ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
        .collect();
    let port = match annotated {
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
        port_annotated: annotated.is_some(),
        named_ports,
    })
}

/// The first port of a Kubernetes Service: (`port`, `targetPort`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePort {
    /// The port clients use.
    pub port: u16,
    /// Where it routes on each pod (`None`: the same number).
    pub target: Option<IntOrString>,
}

/// Services by (namespace, name) → their first port; services without a
/// usable port are left out (their pods keep their own port).
pub fn service_ports(services: &[Arc<corev1::Service>]) -> BTreeMap<(String, String), ServicePort> {
    services
        .iter()
        .filter_map(|s| {
            let name = s.metadata.name.clone()?;
            let ns = s
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let first = s.spec.as_ref()?.ports.as_ref()?.first()?;
            let port = u16::try_from(first.port).ok()?;
            Some((
                (ns, name),
                ServicePort {
                    port,
                    target: first.target_port.clone(),
                },
            ))
        })
        .collect()
}

/// The endpoint port of a pod behind `sp`, `Err` when its named target
/// port is not one of the pod's.
fn endpoint_port(f: &PodFacts, sp: &ServicePort) -> Result<u16, &'static str> {
    match &sp.target {
        _ if f.port_annotated => Ok(f.address.port()),
        None => Ok(sp.port),
        Some(IntOrString::Int(n)) => u16::try_from(*n).map_err(|_| "bad service targetPort"),
        Some(IntOrString::String(name)) => match name.parse::<u16>() {
            Ok(n) => Ok(n),
            Err(_) => f
                .named_ports
                .get(name)
                .copied()
                .ok_or("the service's named targetPort is not a port of the pod"),
        },
    }
}

/// Build the topology from the watched objects. Pods on a node that is not
/// (or no longer) listed are kept but not ready.
pub fn topology(
    pods: &[Arc<corev1::Pod>],
    nodes: &[Arc<corev1::Node>],
    services: &[Arc<corev1::Service>],
    cfg: &KubeConfig,
) -> Topology {
    let ports = service_ports(services);
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
    for mut f in facts {
        let sp = ports.get(&(f.namespace.clone(), f.service.clone()));
        if let Some(sp) = sp {
            match endpoint_port(&f, sp) {
                Ok(p) => f.address.set_port(p),
                Err(why) => {
                    tracing::debug!(pod = %f.name, why, "pod skipped");
                    continue;
                }
            }
        }
        let fqdn = format!("{}.{}.svc.{}", f.service, f.namespace, cfg.cluster_domain);
        let svc = topo
            .services
            .entry(fqdn.clone())
            .or_insert_with(|| Service {
                name: f.service.clone(),
                namespace: f.namespace.clone(),
                fqdn: fqdn.clone(),
                tenant: f.tenant.clone().unwrap_or_else(|| f.namespace.clone()),
                port: sp.map_or(f.address.port(), |sp| sp.port),
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
                ready: f.ready && topo.nodes.contains_key(&f.node),
                node: f.node,
                address: f.address,
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
mod tests;
