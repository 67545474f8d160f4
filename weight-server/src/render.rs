//! `weight-server render-istio`: the Istio YAML that routes the filter's
//! headers. Subset mode: per service a DestinationRule with one subset per
//! pod (label `statefulset.kubernetes.io/pod-name`) and a VirtualService with
//! a header-match route per pod plus a catch-all default. Session mode: the
//! Service label `istio.io/persistent-session-header` (a merge patch).
//! Override mode: one Lua `TrafficExtension` in Istio's root namespace that
//! runs after the filter on every sidecar's outbound side and every gateway
//! and sets Envoy's upstream override host from the header the filter
//! stamps, plus the same for each namespace's waypoint (by `targetRefs`);
//! nothing per service or per pod.

use serde_json::{Value, json};

use crate::topology::Topology;
use crate::{Error, Result};

/// How the rendered objects route a stamped request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// DestinationRule subsets + VirtualService header matches.
    Subset,
    /// The Service label for Istio's persistent session header.
    Session,
    /// The override-host Lua extension (independent of the topology).
    Override,
}

/// Label Istio subsets select pods by.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Service label that turns on Envoy's stateful session by header.
pub const SESSION_LABEL: &str = "istio.io/persistent-session-header";

/// Istio's root namespace (its default): a TrafficExtension there without a
/// selector applies to every proxy of the mesh.
pub const ROOT_NAMESPACE: &str = "istio-system";
/// Name of the override-host extension.
pub const OVERRIDE_NAME: &str = "mplb-override-host";
/// The override extension's priority: below the filter's (100 in the
/// committed WasmPlugins), so Envoy runs it after the filter stamped.
pub const OVERRIDE_PRIORITY: i32 = 0;

/// The Lua of override mode: the request goes to the host the filter
/// stamped when the cluster has it and it is healthy (non-strict), else
/// Envoy balances it as usual. A malformed value (a client's own header on a
/// request the filter left alone) is ignored (`pcall`), never an error.
pub fn override_lua() -> String {
    format!(
        r#"-- multiparty-lb override mode: send the request to the pod the filter picked.
function envoy_on_request(handle)
  local host = handle:headers():get("{h}")
  if host ~= nil then
    pcall(handle.setUpstreamOverrideHost, handle, host, false)
  end
end
"#,
        h = mplb_wire::OVERRIDE_HEADER
    )
}

/// Name of the Gateway (class `istio-waypoint`) the waypoint extension of
/// each namespace targets: `istioctl waypoint apply`'s default.
pub const WAYPOINT_NAME: &str = "waypoint";

/// The override-host TrafficExtension of the sidecars (client side) and
/// gateways: in [`ROOT_NAMESPACE`], no selector.
pub fn override_extension() -> Value {
    let mut ext = override_base(OVERRIDE_NAME, ROOT_NAMESPACE);
    ext["spec"]["match"] = json!([{"mode": "CLIENT"}]);
    ext
}

/// The override-host TrafficExtension of a namespace's waypoint (ambient):
/// a waypoint takes extensions only by `targetRefs`, and Istio builds its
/// chains as the inbound class, so there is no `match: CLIENT` here.
pub fn waypoint_extension(namespace: &str) -> Value {
    let mut ext = override_base(&format!("{OVERRIDE_NAME}-waypoint"), namespace);
    ext["spec"]["targetRefs"] = json!([{
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": WAYPOINT_NAME,
    }]);
    ext
}

fn override_base(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "TrafficExtension",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "multiparty-lb"}},
        "spec": {
            "priority": OVERRIDE_PRIORITY,
            "lua": {"inlineCode": override_lua()},
        },
    })
}

/// The Kubernetes objects, one per document.
pub fn objects(topo: &Topology, mode: Mode, header: &str, session_header: &str) -> Vec<Value> {
    if mode == Mode::Override {
        let mut namespaces: Vec<&str> = topo
            .services
            .values()
            .map(|s| s.namespace.as_str())
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let mut out = vec![override_extension()];
        out.extend(namespaces.into_iter().map(waypoint_extension));
        return out;
    }
    let managed = json!({"app.kubernetes.io/managed-by": "multiparty-lb"});
    let mut out = Vec::new();
    for svc in topo.services.values() {
        let pods: Vec<&str> = topo
            .pods
            .values()
            .filter(|p| p.service == svc.fqdn)
            .map(|p| p.name.as_str())
            .collect();
        match mode {
            Mode::Session => out.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc.name, "namespace": svc.namespace,
                             "labels": {SESSION_LABEL: session_header}},
            })),
            Mode::Override => {}
            Mode::Subset => {
                let name = format!("{}-mplb", svc.name);
                let meta = json!({"name": name, "namespace": svc.namespace, "labels": managed});
                let subsets: Vec<Value> = pods
                    .iter()
                    .map(|p| json!({"name": p, "labels": {POD_NAME_LABEL: p}}))
                    .collect();
                out.push(json!({
                    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": meta, "spec": {"host": svc.fqdn, "subsets": subsets},
                }));
                let port = json!({"number": svc.port});
                let mut http: Vec<Value> = pods
                    .iter()
                    .map(|p| json!({
                        "name": p,
                        "match": [{"headers": {header: {"exact": p}}}],
                        "route": [{"destination": {"host": svc.fqdn, "subset": p, "port": port}}],
                    }))
                    .collect();
                http.push(json!({
                    "name": "default",
                    "route": [{"destination": {"host": svc.fqdn, "port": port}}],
                }));
                out.push(json!({
                    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": meta, "spec": {"hosts": [svc.fqdn], "http": http},
                }));
            }
        }
    }
    out
}

/// The YAML stream.
pub fn yaml(topo: &Topology, mode: Mode, header: &str, session_header: &str) -> Result<String> {
    let mut s = String::from("# Generated by `weight-server render-istio`; do not edit.\n");
    if mode == Mode::Session {
        s.push_str("# Label patches: apply each with `kubectl patch service NAME -n NS --type merge -p ...`.\n");
    }
    if mode == Mode::Override {
        s.push_str(
            "# kubectl apply -f; then set `mode: override` in the filter's pluginConfig, e.g.\n\
             # kubectl patch wasmplugin mplb-filter -n NS --type merge -p '{\"spec\":{\"pluginConfig\":{\"mode\":\"override\"}}}'\n",
        );
    }
    for obj in objects(topo, mode, header, session_header) {
        s.push_str("---\n");
        s.push_str(
            &serde_norway::to_string(&obj).map_err(|e| Error::Config(format!("YAML: {e}")))?,
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::file;

    #[test]
    fn one_subset_and_route_per_pod_plus_default() {
        let t = file::parse(
            r#"
nodes: [{name: n, capacity_millicores: 1000}]
services: [{name: geo, namespace: hotel, port: 8083}]
pods:
  - {name: geo-0, service: geo, node: n, address: "127.0.0.1:1"}
  - {name: geo-1, service: geo, node: n, address: "127.0.0.1:2"}
"#,
            "cluster.local",
        )
        .unwrap();
        let o = objects(&t, Mode::Subset, "x-lb-endpt", "x-lb-session");
        assert_eq!(o.len(), 2);
        assert_eq!(
            o[0]["spec"]["subsets"][1]["labels"][POD_NAME_LABEL],
            "geo-1"
        );
        let http = o[1]["spec"]["http"].as_array().unwrap();
        assert_eq!(http.len(), 3);
        assert_eq!(
            http[0]["match"][0]["headers"]["x-lb-endpt"]["exact"],
            "geo-0"
        );
        assert_eq!(http[2]["route"][0]["destination"]["port"]["number"], 8083);
        let s = objects(&t, Mode::Session, "x-lb-endpt", "x-lb-session");
        assert_eq!(s[0]["metadata"]["labels"][SESSION_LABEL], "x-lb-session");
        let text = yaml(&t, Mode::Subset, "x-lb-endpt", "x-lb-session").unwrap();
        assert_eq!(text.lines().filter(|l| *l == "---").count(), 2);
    }

    #[test]
    fn override_is_one_extension_whatever_the_pod_count() {
        let mut pods = String::new();
        for i in 0..50 {
            pods.push_str(&format!(
                "  - {{name: geo-{i}, service: geo, node: n, address: \"127.0.0.1:{}\"}}\n",
                1000 + i
            ));
        }
        let t = file::parse(
            &format!(
                "nodes: [{{name: n, capacity_millicores: 1000}}]\n\
                 services: [{{name: geo, namespace: hotel, port: 8083}}]\npods:\n{pods}"
            ),
            "cluster.local",
        )
        .unwrap();
        let o = objects(&t, Mode::Override, "x-lb-endpt", "x-lb-session");
        assert_eq!(o.len(), 2, "the mesh-wide one and hotel's waypoint's");
        assert_eq!(o[0]["kind"], "TrafficExtension");
        assert_eq!(o[1]["metadata"]["namespace"], "hotel");
        assert_eq!(o[1]["spec"]["targetRefs"][0]["name"], WAYPOINT_NAME);
        assert!(o[1]["spec"].get("match").is_none());
        assert_eq!(o[0]["metadata"]["namespace"], ROOT_NAMESPACE);
        assert_eq!(o[0]["spec"]["priority"], OVERRIDE_PRIORITY);
        let lua = o[0]["spec"]["lua"]["inlineCode"].as_str().unwrap();
        assert!(lua.contains(r#"get("x-lb-host")"#), "{lua}");
        assert!(
            lua.contains("setUpstreamOverrideHost, handle, host, false"),
            "{lua}"
        );
        let text = yaml(&t, Mode::Override, "x-lb-endpt", "x-lb-session").unwrap();
        assert!(text.contains("inlineCode: |"), "{text}");
        // The shipped manifest is this output (regenerate it when this fails:
        // `weight-server render-istio --mode override --topology ...`).
        assert_eq!(
            text,
            include_str!("../../envoyfilter/override/override-host.yaml")
        );
    }
}
