package waypoint

// These tests check Istio's generation for an ambient waypoint in process
// (no Envoy); dataplane_test.go runs a real waypoint Envoy on it.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"istio.io/api/label"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"

	hmesh "github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// world is a waypoint for namespace hotel (as `istioctl waypoint apply -n
// hotel` makes it: Gateway class istio-waypoint, its Service and one
// instance) and the profile Service, which uses it.
const world = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: hotel}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
status:
  addresses: [{type: Hostname, value: waypoint.hotel.svc.cluster.local}]
---
apiVersion: v1
kind: Service
metadata:
  name: waypoint
  namespace: hotel
  labels:
    gateway.istio.io/managed: istio.io-mesh-controller
    gateway.networking.k8s.io/gateway-name: waypoint
    istio.io/gateway-name: waypoint
spec:
  clusterIP: 10.0.0.15
  ports: [{appProtocol: hbone, name: mesh, port: 15008}]
  selector: {gateway.networking.k8s.io/gateway-name: waypoint}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: waypoint-a, namespace: hotel}
spec:
  address: 10.1.0.15
  labels: {gateway.networking.k8s.io/gateway-name: waypoint}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: profile
  namespace: hotel
  labels: {istio.io/use-waypoint: waypoint}
spec:
  hosts: [profile.hotel.svc.cluster.local]
  addresses: [10.0.0.31]
  ports: [{number: 8081, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: profile}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: profile-0, namespace: hotel}
spec:
  address: 10.1.0.31
  labels: {app: profile}
`

func manifest(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "envoyfilter", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var urlLine = regexp.MustCompile(`(?m)^(\s+url: ).*$`)

// generate is Istio's generation, in process, for the waypoint of world
// given the committed waypoint WasmPlugin, render-istio's override output
// and extra Istio config; kube adds Kubernetes objects.
func generate(t *testing.T, extra []string, kube ...string) (*xds.FakeDiscoveryServer, *model.Proxy) {
	t.Helper()
	saved := []bool{features.EnableAmbient, features.EnableAmbientWaypoints, features.EnablePersistentSessionFilter.Load()}
	features.EnableAmbient, features.EnableAmbientWaypoints = true, true
	features.EnablePersistentSessionFilter.Store(true)
	t.Cleanup(func() {
		features.EnableAmbient, features.EnableAmbientWaypoints = saved[0], saved[1]
		features.EnablePersistentSessionFilter.Store(saved[2])
	})
	plugin := urlLine.ReplaceAllString(manifest(t, "override/wasmplugin-waypoint.yaml"), "${1}file:///mplb_filter.wasm")
	config := strings.Join(append([]string{world, plugin, manifest(t, "override/override-host.yaml")}, extra...), "\n---\n")
	d := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString:           config,
		KubernetesObjectString: strings.Join(append([]string{world}, kube...), "\n---\n"),
		MeshConfig:             mesh.DefaultMeshConfig(),
	})
	proxy := d.SetupProxy(&model.Proxy{
		Type:            model.Waypoint,
		ConfigNamespace: "hotel",
		Labels: map[string]string{
			label.IoK8sNetworkingGatewayGatewayName.Name: "waypoint",
			label.GatewayManaged.Name:                    constants.ManagedGatewayMeshControllerLabel,
		},
		IPAddresses: []string{"10.1.0.15"},
	})
	return d, proxy
}

// The committed override manifests attach the filter and the override Lua
// to the waypoint by targetRefs, in that order before the router; Istio
// adds no stateful-session filter to a waypoint even with the persistent-
// session flag on (so session mode cannot work there).
func TestWaypointGetsTheFilterThenTheOverride(t *testing.T) {
	d, proxy := generate(t, nil)
	l := xdstest.ExtractListener("main_internal", d.Listeners(proxy))
	if l == nil {
		t.Fatal("the waypoint has no main_internal listener")
	}
	checked := 0
	for _, fc := range l.GetFilterChains() {
		var m *hcm.HttpConnectionManager
		for _, f := range fc.GetFilters() {
			if f.GetTypedConfig() != nil && strings.HasSuffix(f.GetTypedConfig().GetTypeUrl(), "HttpConnectionManager") {
				m = xdstest.ExtractHTTPConnectionManager(t, fc)
			}
		}
		if m == nil {
			continue
		}
		var names []string
		for _, f := range m.GetHttpFilters() {
			names = append(names, f.GetName())
		}
		if !strings.Contains(fc.GetName(), "profile") {
			continue
		}
		checked++
		t.Logf("%s: %v", fc.GetName(), names)
		plugin, lua, router := index(names, "mplb-filter-waypoint"), index(names, "mplb-override-host-waypoint"), index(names, "envoy.filters.http.router")
		if plugin < 0 || lua < 0 || router < 0 || plugin > lua || lua > router {
			t.Errorf("%s: want mplb-filter-waypoint < mplb-override-host-waypoint < router: %v", fc.GetName(), names)
		}
		if index(names, "stateful_session") >= 0 {
			t.Errorf("%s: a stateful-session filter on the waypoint: session mode may work there; update the docs", fc.GetName())
		}
	}
	if checked == 0 {
		t.Fatalf("no HTTP chain of the waypoint serves profile: %v", xdstest.ExtractFilterChainNames(l))
	}
}

func index(list []string, part string) int {
	for i, n := range list {
		if strings.Contains(n, part) {
			return i
		}
	}
	return -1
}

// Why the committed weight-server reference is needed, shown on Istio's
// generation: a waypoint gets outbound clusters only for services its
// routes or a selecting EnvoyFilter's referenced-services annotation name,
// so with the WasmPlugin and the override extension alone it has no
// weight-server cluster and the filter cannot poll (the committed
// WeightServerReference gives it one); and every HTTP chain carries
// Istio's peer-metadata filter, which the harness's NoPeerMetadata removes
// for upstream Envoy.
func TestWaypointNeedsTheWeightServerReference(t *testing.T) {
	ns, err := hmesh.SplitYAML(manifest(t, "namespace.yaml") + "\n---\n" + manifest(t, "weight-server.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wsKube, err := hmesh.JoinYAML(hmesh.KeepKinds(ns, "Namespace", "Service"))
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "outbound|8080||weight-server.mplb-system.svc.cluster.local"
	for _, c := range []struct {
		name  string
		extra []string
		want  bool
	}{{"without the reference", nil, false}, {"with the committed reference and NoPeerMetadata", []string{manifest(t, WeightServerReference), NoPeerMetadata}, true}} {
		t.Run(c.name, func(t *testing.T) {
			d, proxy := generate(t, c.extra, wsKube)
			var names []string
			for _, cl := range d.Clusters(proxy) {
				names = append(names, cl.GetName())
			}
			if got := index(names, cluster) >= 0; got != c.want {
				t.Errorf("waypoint has %s: %v, want %v (clusters %v)", cluster, got, c.want, names)
			}
			peer := 0
			for _, l := range d.Listeners(proxy) {
				for _, fc := range l.GetFilterChains() {
					for _, f := range fc.GetFilters() {
						if f.GetTypedConfig() == nil || !strings.HasSuffix(f.GetTypedConfig().GetTypeUrl(), "HttpConnectionManager") {
							continue
						}
						for _, hf := range xdstest.ExtractHTTPConnectionManager(t, fc).GetHttpFilters() {
							if strings.Contains(hf.GetName(), "peer_metadata") {
								peer++
							}
						}
					}
				}
			}
			if (peer > 0) == c.want {
				t.Errorf("%d peer-metadata filters on the waypoint's HTTP chains", peer)
			}
			t.Logf("clusters %v; %d peer-metadata filters", names, peer)
		})
	}
}
