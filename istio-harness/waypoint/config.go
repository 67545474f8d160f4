package waypoint

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// WaypointServices are the Services labelled `istio.io/use-waypoint:
// waypoint` (what `istioctl waypoint apply -n hotel --enroll-namespace`
// or a label per Service does): their traffic from ambient clients goes
// through the waypoint.
var WaypointServices = []string{"profile", "geo"}

// gatewayObjects are what `istioctl waypoint apply -n hotel` makes and
// Istio's gateway controller derives: the Gateway (class istio-waypoint,
// with the address status the controller writes), its Service, and the
// Deployment's pod and endpoints.
func gatewayObjects(pod mesh.Pod) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: %[1]s}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: %[2]d, protocol: HBONE}]
status:
  addresses: [{type: Hostname, value: waypoint.%[1]s.svc.cluster.local}]
`, pod.Namespace, HBONEPort)
}

func waypointKube(pod mesh.Pod, vip string) string {
	labels, _ := json.Marshal(pod.Labels)
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: waypoint
  namespace: %[1]s
  labels:
    gateway.istio.io/managed: istio.io-mesh-controller
    gateway.networking.k8s.io/gateway-name: waypoint
    istio.io/gateway-name: waypoint
spec:
  clusterIP: %[2]s
  ports: [{appProtocol: hbone, name: mesh, port: %[3]d}]
  selector: {gateway.networking.k8s.io/gateway-name: waypoint}
---
apiVersion: v1
kind: Pod
metadata: {name: %[4]s, namespace: %[1]s, labels: %[5]s}
spec:
  serviceAccountName: waypoint
  containers: [{name: istio-proxy, image: istio/proxyv2}]
status:
  phase: Running
  podIP: %[6]s
  podIPs: [{ip: %[6]s}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: waypoint-mplb, namespace: %[1]s, labels: {kubernetes.io/service-name: waypoint}}
addressType: IPv4
ports: [{name: mesh, port: %[3]d, protocol: TCP}]
endpoints: [{addresses: [%[6]s], conditions: {ready: true}, targetRef: {kind: Pod, name: %[4]s, namespace: %[1]s}}]
`, pod.Namespace, vip, HBONEPort, pod.Name, labels, pod.IP)
}

// controlPlaneInput: the committed weight-server.yaml, the committed
// waypoint WasmPlugin (url to the built module, pluginConfig mode set to
// mode) and its weight-server reference (WeightServerReference),
// render-istio's output in that mode (override: its waypoint
// TrafficExtension; subset: its DestinationRules and VirtualServices;
// session: its Service label patches, merged into the committed Services
// as `kubectl patch --type merge` would), the waypoint's Gateway and the
// harness's switches (Switches); Kubernetes: the committed Namespaces and
// Services with cluster IPs and the use-waypoint label, the pods, the
// waypoint's Service, pod and endpoints.
func (s *Stack) controlPlaneInput(topo, wasm, mode string, ambientPods bool) (config, kube string, err error) {
	r := s.Repo
	read := func(rel string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = r.Manifest(rel)
		return out
	}
	ws, plugin, ns, app := read("weight-server.yaml"), read("override/wasmplugin-waypoint.yaml"),
		read("namespace.yaml"), read("hotel/hotel-app.yaml")
	reference := read(WeightServerReference)
	if err != nil {
		return "", "", err
	}
	if plugin, err = mesh.LocalWasmPlugin(plugin, wasm, map[string]string{"mode": mode}); err != nil {
		return "", "", err
	}
	rendered, err := r.RenderIstio(topo, mode)
	if err != nil {
		return "", "", err
	}
	committed, err := mesh.SplitYAML(ns + "\n---\n" + ws + "\n---\n" + app)
	if err != nil {
		return "", "", err
	}
	objects := mesh.KeepKinds(committed, "Namespace", "Service")
	if mode == "session" {
		patches, perr := mesh.SplitYAML(rendered)
		if perr != nil {
			return "", "", perr
		}
		if err = mesh.ApplyLabelPatches(objects, patches); err != nil {
			return "", "", err
		}
		rendered = ""
	}
	for _, o := range objects {
		if o["kind"] != "Service" {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		vip, ok := s.VIPs[name]
		if !ok {
			return "", "", fmt.Errorf("no cluster IP for Service %s", name)
		}
		spec, _ := o["spec"].(map[string]any)
		spec["clusterIP"] = vip
		for _, w := range WaypointServices {
			if w == name {
				labels, _ := md["labels"].(map[string]any)
				if labels == nil {
					labels = map[string]any{}
					md["labels"] = labels
				}
				labels["istio.io/use-waypoint"] = "waypoint"
			}
		}
	}
	objects = append(objects, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "istio-system"}})
	kube, err = s.KubeObjects(objects)
	if err != nil {
		return "", "", err
	}
	if ambientPods {
		if kube, err = enrol(kube); err != nil {
			return "", "", err
		}
	}
	gw := gatewayObjects(s.Pod)
	kube = strings.Join([]string{kube, gw, waypointKube(s.Pod, s.VIPs["waypoint"])}, "\n---\n")
	parts := []string{ws, plugin, reference, gw}
	if rendered != "" {
		parts = append(parts, rendered)
	}
	parts = append(parts, switchObjects()...)
	return strings.Join(parts, "\n---\n"), kube, nil
}

// Bootstrap is the waypoint's Envoy bootstrap as istio-agent writes it for
// a waypoint pod, in the parts that matter here: node `waypoint~...` with
// the pod's metadata, ADS to istiod, the internal-listener bootstrap
// extension (Istio's waypoint listeners are internal listeners), and the
// `sds-grpc` cluster on istio-agent's SDS socket.
func Bootstrap(pod mesh.Pod, ads, sdsSocket string) (string, error) {
	base, err := mesh.Bootstrap(mesh.ProxyRole("waypoint"), pod, "waypoint", ads)
	if err != nil {
		return "", err
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(base), &b); err != nil {
		return "", err
	}
	node := b["node"].(map[string]any)
	md := node["metadata"].(map[string]any)
	md["SERVICE_ACCOUNT"] = "waypoint"
	md["ISTIO_VERSION"] = ProxyVersion
	md["OWNER"] = fmt.Sprintf("kubernetes://apis/apps/v1/namespaces/%s/deployments/waypoint", pod.Namespace)
	b["bootstrap_extensions"] = []any{map[string]any{
		"name": "envoy.bootstrap.internal_listener",
		"typed_config": map[string]any{
			"@type":          "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener",
			"buffer_size_kb": 64,
		},
	}}
	static := b["static_resources"].(map[string]any)
	static["clusters"] = append(static["clusters"].([]any), map[string]any{
		"name": "sds-grpc", "type": "STATIC", "connect_timeout": "1s",
		"typed_extension_protocol_options": map[string]any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": map[string]any{
				"@type":                "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
				"explicit_http_config": map[string]any{"http2_protocol_options": map[string]any{}},
			},
		},
		"load_assignment": map[string]any{"cluster_name": "sds-grpc", "endpoints": []any{map[string]any{
			"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{
				"address": map[string]any{"pipe": map[string]any{"path": sdsSocket}},
			}}},
		}}},
	})
	out, err := json.MarshalIndent(b, "", "  ")
	return string(out), err
}

// enrol annotates the pods of WaypointServices as istio-cni does for a pod
// in an ambient namespace (ambient.istio.io/redirection: enabled), which
// is what makes Istio's ambient index give them HBONE.
func enrol(kube string) (string, error) {
	docs, err := mesh.SplitYAML(kube)
	if err != nil {
		return "", err
	}
	for _, d := range docs {
		md, _ := d["metadata"].(map[string]any)
		labels, _ := md["labels"].(map[string]any)
		if d["kind"] != "Pod" || md["namespace"] != "hotel" {
			continue
		}
		for _, svc := range WaypointServices {
			if labels["app"] == svc {
				md["annotations"] = map[string]any{"ambient.istio.io/redirection": "enabled"}
			}
		}
	}
	return mesh.JoinYAML(docs)
}
