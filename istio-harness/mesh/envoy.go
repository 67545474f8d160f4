package mesh

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProxyRole is how the Envoy presents itself to Istio.
type ProxyRole string

const (
	// Router is an ingress gateway (`router~...`).
	Router ProxyRole = "router"
	// Sidecar is a workload's sidecar (`sidecar~...`), interception mode NONE.
	Sidecar ProxyRole = "sidecar"
)

// IstioVersion is the proxy version the Envoys announce (ISTIO_VERSION).
const IstioVersion = "1.32.0"

// Bootstrap is an Envoy bootstrap pointing ADS at the control plane, with
// the node id and metadata istio-agent would write for pod p.
func Bootstrap(role ProxyRole, p Pod, workload, adsAddr string) (string, error) {
	host, port, ok := strings.Cut(adsAddr, ":")
	if !ok {
		return "", fmt.Errorf("ADS address %q is not host:port", adsAddr)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	md := map[string]any{
		"NAMESPACE":       p.Namespace,
		"LABELS":          p.Labels,
		"NAME":            p.Name,
		"WORKLOAD_NAME":   workload,
		"OWNER":           fmt.Sprintf("kubernetes://apis/apps/v1/namespaces/%s/statefulsets/%s", p.Namespace, workload),
		"ISTIO_VERSION":   IstioVersion,
		"CLUSTER_ID":      "Kubernetes",
		"INSTANCE_IPS":    p.IP,
		"SERVICE_ACCOUNT": "default",
		"MESH_ID":         "cluster.local",
	}
	if role == Sidecar {
		md["INTERCEPTION_MODE"] = "NONE"
	}
	b := map[string]any{
		"node": map[string]any{
			"id":       fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", role, p.IP, p.Name, p.Namespace, p.Namespace),
			"cluster":  fmt.Sprintf("%s.%s", workload, p.Namespace),
			"metadata": md,
		},
		"admin": map[string]any{"address": sock("127.0.0.1", 0)},
		"dynamic_resources": map[string]any{
			"ads_config": map[string]any{
				"api_type": "GRPC", "transport_api_version": "V3",
				"set_node_on_first_message_only": true,
				"grpc_services":                  []any{map[string]any{"envoy_grpc": map[string]any{"cluster_name": "xds-grpc"}}},
			},
			"cds_config": map[string]any{"ads": map[string]any{}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"},
			"lds_config": map[string]any{"ads": map[string]any{}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"},
		},
		"static_resources": map[string]any{"clusters": []any{map[string]any{
			"name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
			"typed_extension_protocol_options": map[string]any{
				"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": map[string]any{
					"@type":                "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
					"explicit_http_config": map[string]any{"http2_protocol_options": map[string]any{}},
				},
			},
			"load_assignment": map[string]any{"cluster_name": "xds-grpc", "endpoints": []any{map[string]any{
				"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": sock(host, portNum)}}},
			}}},
		}}},
	}
	out, err := json.MarshalIndent(b, "", "  ")
	return string(out), err
}

func sock(addr string, port int) map[string]any {
	return map[string]any{"socket_address": map[string]any{"address": addr, "port_value": port}}
}

// Envoy is a running Envoy with its admin address.
type Envoy struct {
	*Process
	// Admin is the admin interface's host:port.
	Admin string
}

// StartEnvoy starts bin on the bootstrap; env carries the variables the
// WasmPlugin's vmConfig passes from the host (ISTIO_META_WORKLOAD_NAME).
func StartEnvoy(dir, name, bin, bootstrap string, env []string) (*Envoy, error) {
	cfg := filepath.Join(dir, name+".json")
	if err := os.WriteFile(cfg, []byte(bootstrap), 0o644); err != nil {
		return nil, err
	}
	adminPath := filepath.Join(dir, name+".admin")
	p, err := StartProcess(dir, name, bin, env, "-c", cfg, "--concurrency", "2",
		"--disable-hot-restart", "--admin-address-path", adminPath, "-l", "info",
		"--component-log-level", "wasm:debug")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(adminPath); err == nil && len(strings.TrimSpace(string(data))) > 0 {
			return &Envoy{Process: p, Admin: strings.TrimSpace(string(data))}, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("envoy %s did not start:\n%s", name, p.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stats are the admin interface's counters and gauges matching filter.
func (e *Envoy) Stats(filter string) (map[string]int64, error) {
	resp, err := http.Get("http://" + e.Admin + "/stats?filter=" + filter)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// ConfigDump is the admin config dump (for failure messages and checks).
func (e *Envoy) ConfigDump() (string, error) {
	resp, err := http.Get("http://" + e.Admin + "/config_dump")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// HTTPFilterChains are the names of every http_filters list in a config
// dump, in order (one list per HTTP connection manager).
func HTTPFilterChains(dump string) ([][]string, error) {
	var v any
	if err := json.Unmarshal([]byte(dump), &v); err != nil {
		return nil, err
	}
	var out [][]string
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			for k, c := range n {
				if list, ok := c.([]any); ok && k == "http_filters" {
					var names []string
					for _, f := range list {
						if m, ok := f.(map[string]any); ok {
							name, _ := m["name"].(string)
							names = append(names, name)
						}
					}
					out = append(out, names)
					continue
				}
				walk(c)
			}
		case []any:
			for _, c := range n {
				walk(c)
			}
		}
	}
	walk(v)
	return out, nil
}
