// Package mesh builds the Istio-driven test world: test pods (echo servers
// on 127.0.0.x), the Kubernetes objects Istio's control plane reads for them,
// the weight server's topology, and real Envoys bootstrapped from the
// control plane as an ingress gateway and as a sidecar.
package mesh

import (
	"fmt"
	"sort"
	"strings"
)

// Pod is one test pod: a StatefulSet pod of a hotel service (or the weight
// server, or the gateway), on its own loopback address.
type Pod struct {
	// Name is the pod name (`<service>-<ordinal>` for StatefulSet pods).
	Name string
	// Service is the Kubernetes Service the pod backs (short name).
	Service string
	// Namespace is the pod's namespace.
	Namespace string
	// IP is the pod's loopback address (127.0.0.x).
	IP string
	// Port is the port the pod serves on (the Service's targetPort).
	Port int
	// Labels are the pod's labels.
	Labels map[string]string
}

// Addr is ip:port.
func (p Pod) Addr() string { return fmt.Sprintf("%s:%d", p.IP, p.Port) }

// FQDN is the pod's Service host name.
func (p Pod) FQDN() string { return fmt.Sprintf("%s.%s.svc.cluster.local", p.Service, p.Namespace) }

// hotelPod is a pod of a hotel StatefulSet labelled as envoyfilter/hotel/
// hotel-app.yaml's pod template and the generated subsets expect.
func hotelPod(service string, ordinal int, ip string, port int) Pod {
	name := fmt.Sprintf("%s-%d", service, ordinal)
	return Pod{
		Name: name, Service: service, Namespace: "hotel", IP: ip, Port: port,
		Labels: map[string]string{
			"app":                                service,
			"mplb.io/managed":                    "true",
			"mplb.io/tenant":                     "hotel",
			"statefulset.kubernetes.io/pod-name": name,
		},
	}
}

// World is the test world's pods.
type World struct {
	// Pods are the application pods the tests route to (frontend, profile, geo).
	Pods []Pod
	// WeightServer is the weight server's pod (mplb-system).
	WeightServer Pod
	// Gateway is the ingress gateway's pod (istio-system).
	Gateway Pod
	// GatewayPort is the gateway pod's HTTP port (the Service's targetPort for port 80).
	GatewayPort int
	// Ghosts are pods the weight server's topology (and so its table) names
	// but Kubernetes does not: no echo server, no endpoint in Istio. They
	// stand for a pod that is gone while the table still names it.
	Ghosts []Pod
	// Clients are pods that back no Service: Kubernetes has their Pod
	// only (the scale world's bench client).
	Clients []Pod
}

// GhostPod is the ghost the override world adds: a third geo pod.
func GhostPod() Pod { return hotelPod("geo", 2, "127.0.0.43", 8083) }

// NewWorld lays out the pods on fixed loopback addresses. The ports are the
// committed Services' ports (hotel-app.yaml, weight-server.yaml).
func NewWorld(gatewayPort int) World {
	w := World{GatewayPort: gatewayPort}
	for i := 0; i < 3; i++ {
		w.Pods = append(w.Pods, hotelPod("frontend", i, fmt.Sprintf("127.0.0.%d", 21+i), 5000))
	}
	for i := 0; i < 3; i++ {
		w.Pods = append(w.Pods, hotelPod("profile", i, fmt.Sprintf("127.0.0.%d", 31+i), 8081))
	}
	for i := 0; i < 2; i++ {
		w.Pods = append(w.Pods, hotelPod("geo", i, fmt.Sprintf("127.0.0.%d", 41+i), 8083))
	}
	w.WeightServer = Pod{
		Name: "weight-server-6d5f7c9b8-x2x4q", Service: "weight-server", Namespace: "mplb-system",
		IP: "127.0.0.50", Port: 8080, Labels: map[string]string{"app": "weight-server"},
	}
	w.Gateway = Pod{
		Name: "istio-ingressgateway-5c8d6f7b9-gw001", Service: "istio-ingressgateway", Namespace: "istio-system",
		IP: "127.0.0.60", Port: gatewayPort,
		Labels: map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"},
	}
	return w
}

// PodsOf are the application pods of a service, in name order.
func (w World) PodsOf(service string) []Pod {
	var out []Pod
	for _, p := range w.Pods {
		if p.Service == service {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PodByName finds a pod by name.
func (w World) PodByName(name string) (Pod, bool) {
	for _, p := range append(append([]Pod{}, w.Pods...), w.WeightServer, w.Gateway) {
		if p.Name == name {
			return p, true
		}
	}
	return Pod{}, false
}

// Topology is the weight server's topology file for the application pods
// (one node; the policy is irrelevant: the tests set operator weights).
func (w World) Topology() string {
	var b strings.Builder
	b.WriteString("nodes:\n  - {name: node-a, capacity_millicores: 4000}\nservices:\n")
	seen := map[string]bool{}
	for _, p := range w.Pods {
		if seen[p.Service] {
			continue
		}
		seen[p.Service] = true
		fmt.Fprintf(&b, "  - {name: %s, namespace: %s, tenant: hotel, port: %d}\n", p.Service, p.Namespace, p.Port)
	}
	b.WriteString("pods:\n")
	for _, p := range append(append([]Pod{}, w.Pods...), w.Ghosts...) {
		fmt.Fprintf(&b, "  - {name: %s, service: %s, node: node-a, address: \"%s\", cpu_request_millicores: 500}\n",
			p.Name, p.Service, p.Addr())
	}
	return b.String()
}
