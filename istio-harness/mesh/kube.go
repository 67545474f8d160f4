package mesh

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// doc is one Kubernetes object as generic YAML.
type doc = map[string]any

// SplitYAML splits a YAML stream into its non-empty documents.
func SplitYAML(stream string) ([]doc, error) {
	var out []doc
	for i, part := range strings.Split("\n"+stream, "\n---") {
		var d doc
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(d) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// JoinYAML writes documents as one YAML stream.
func JoinYAML(docs []doc) (string, error) {
	var b strings.Builder
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String(), nil
}

func kindOf(d doc) string { s, _ := d["kind"].(string); return s }

func meta(d doc) doc {
	m, _ := d["metadata"].(doc)
	if m == nil {
		m = doc{}
		d["metadata"] = m
	}
	return m
}

func nameOf(d doc) (name, namespace string) {
	m := meta(d)
	name, _ = m["name"].(string)
	namespace, _ = m["namespace"].(string)
	return name, namespace
}

// KeepKinds keeps the documents of the given kinds.
func KeepKinds(docs []doc, kinds ...string) []doc {
	var out []doc
	for _, d := range docs {
		for _, k := range kinds {
			if kindOf(d) == k {
				out = append(out, d)
			}
		}
	}
	return out
}

// ApplyLabelPatches merges the labels of each partial Service in patches
// (render-istio --mode session prints such merge patches) into the Service
// of the same name and namespace, as `kubectl patch --type merge` would.
// A patch naming no Service is an error.
func ApplyLabelPatches(services []doc, patches []doc) error {
	for _, p := range patches {
		pn, pns := nameOf(p)
		found := false
		for _, s := range services {
			if n, ns := nameOf(s); kindOf(s) == kindOf(p) && n == pn && ns == pns {
				labels, _ := meta(s)["labels"].(doc)
				if labels == nil {
					labels = doc{}
					meta(s)["labels"] = labels
				}
				pl, _ := meta(p)["labels"].(doc)
				for k, v := range pl {
					labels[k] = v
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("patch for %s %s/%s: no such object", kindOf(p), pns, pn)
		}
	}
	return nil
}

// servicePort is the first port of a Service: name, port, targetPort.
func servicePort(svc doc) (name string, port int, err error) {
	spec, _ := svc["spec"].(doc)
	ports, _ := spec["ports"].([]any)
	if len(ports) == 0 {
		n, ns := nameOf(svc)
		return "", 0, fmt.Errorf("service %s/%s has no ports", ns, n)
	}
	p, _ := ports[0].(doc)
	name, _ = p["name"].(string)
	f, _ := p["port"].(float64)
	return name, int(f), nil
}

// KubeObjects is the Kubernetes side of the world: the given Services (and
// Namespaces) as committed, the gateway's Service, and per pod a Pod (with
// status.podIP, Running and Ready) and its entry in its Service's
// EndpointSlice, whose port name is the Service port's.
func (w World) KubeObjects(committed []doc) (string, error) {
	docs := append([]doc{}, committed...)
	docs = append(docs, doc{
		"apiVersion": "v1", "kind": "Service",
		"metadata": doc{"name": w.Gateway.Service, "namespace": w.Gateway.Namespace,
			"labels": doc{"app": "istio-ingressgateway", "istio": "ingressgateway"}},
		"spec": doc{"selector": doc{"istio": "ingressgateway"},
			"ports": []any{doc{"name": "http2", "port": 80, "targetPort": w.GatewayPort, "protocol": "TCP"}}},
	})
	byService := map[string][]Pod{}
	all := append(append([]Pod{}, w.Pods...), w.WeightServer, w.Gateway)
	for _, p := range append(all, w.Clients...) {
		if !isClient(w, p) {
			key := p.Namespace + "/" + p.Service
			byService[key] = append(byService[key], p)
		}
		docs = append(docs, doc{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": doc{"name": p.Name, "namespace": p.Namespace, "labels": stringMap(p.Labels)},
			"spec": doc{"serviceAccountName": "default", "containers": []any{doc{
				"name": "app", "image": "mplb/test-pod",
				"ports": []any{doc{"name": "http", "containerPort": p.Port}},
			}}},
			"status": doc{"phase": "Running", "podIP": p.IP, "podIPs": []any{doc{"ip": p.IP}},
				"conditions": []any{doc{"type": "Ready", "status": "True"}}},
		})
	}
	keys := make([]string, 0, len(byService))
	for k := range byService {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		pods := byService[key]
		var svc doc
		for _, d := range docs {
			if n, ns := nameOf(d); kindOf(d) == "Service" && ns+"/"+n == key {
				svc = d
			}
		}
		if svc == nil {
			return "", fmt.Errorf("no Service %s for pods", key)
		}
		portName, _, err := servicePort(svc)
		if err != nil {
			return "", err
		}
		var eps []any
		for _, p := range pods {
			eps = append(eps, doc{
				"addresses":  []any{p.IP},
				"conditions": doc{"ready": true},
				"targetRef":  doc{"kind": "Pod", "name": p.Name, "namespace": p.Namespace},
			})
		}
		docs = append(docs, doc{
			"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata": doc{"name": pods[0].Service + "-mplb", "namespace": pods[0].Namespace,
				"labels": doc{"kubernetes.io/service-name": pods[0].Service}},
			"addressType": "IPv4",
			"ports":       []any{doc{"name": portName, "port": pods[0].Port, "protocol": "TCP"}},
			"endpoints":   eps,
		})
	}
	return JoinYAML(docs)
}

func isClient(w World, p Pod) bool {
	for _, c := range w.Clients {
		if c.Name == p.Name && c.Namespace == p.Namespace {
			return true
		}
	}
	return false
}

func stringMap(m map[string]string) doc {
	out := doc{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
