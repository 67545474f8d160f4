package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func crds(t *testing.T) string {
	t.Helper()
	if v := os.Getenv("MPLB_ISTIO_CRDS"); v != "" {
		return v
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("go list -m istio.io/api: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
}

// manifests are the committed YAML files under envoyfilter/.
func manifests(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, glob := range []string{"*.yaml", "*/*.yaml"} {
		m, err := filepath.Glob(filepath.Join("..", "..", "envoyfilter", glob))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 8 {
		t.Fatalf("found only %v", out)
	}
	return out
}

// envoyFilterWarning is the warning Istio gives every EnvoyFilter, whatever
// it holds. The one committed EnvoyFilter
// (override/weight-server-waypoint.yaml) patches nothing: it only names the
// weight server in Istio's referenced-services annotation, so a waypoint
// gets its cluster; any other warning still fails.
const envoyFilterWarning = "EnvoyFilter exposes internal implementation details"

func TestEveryCommittedManifestPassesIstioValidation(t *testing.T) {
	v, err := New(crds(t))
	if err != nil {
		t.Fatal(err)
	}
	istio := 0
	for _, path := range manifests(t) {
		results, err := v.File(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, r := range results {
			if !r.Istio {
				continue
			}
			istio++
			if r.Err != nil {
				t.Errorf("%s: %s %s/%s refused: %v", path, r.Kind, r.Namespace, r.Name, r.Err)
			}
			for _, w := range r.Warnings {
				if r.Kind == "EnvoyFilter" && strings.HasPrefix(w, envoyFilterWarning) {
					continue
				}
				t.Errorf("%s: %s %s/%s warning: %s", path, r.Kind, r.Namespace, r.Name, w)
			}
		}
	}
	// 2 WasmPlugins, the weight server's DestinationRule, the Gateway and its
	// VirtualService, 16 generated routing objects, the optional Sidecar.
	if istio < 21 {
		t.Errorf("only %d Istio objects checked", istio)
	}
}

// A route matching on a header name Istio does not accept: the CRD schema
// lets it through (header maps are free-form), Istio's validation refuses.
const brokenVirtualService = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: profile-mplb
  namespace: hotel
spec:
  hosts: [profile.hotel.svc.cluster.local]
  http:
  - name: profile-0
    match:
    - headers:
        "x lb endpt":
          exact: profile-0
    route:
    - destination:
        host: profile.hotel.svc.cluster.local
        subset: profile-0
`

// An unknown field, refused by the CRD's structural schema.
const unknownField = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: profile-mplb
  namespace: hotel
spec:
  host: profile.hotel.svc.cluster.local
  subsets:
  - name: profile-0
    lables:
      statefulset.kubernetes.io/pod-name: profile-0
`

func TestBrokenManifestsAreRefusedWithIstiosMessage(t *testing.T) {
	v, err := New(crds(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"bad header name", brokenVirtualService, "header name x lb endpt is not a valid header name"},
		{"unknown field", unknownField, "unknown fields"},
	} {
		results, err := v.Stream(c.yaml)
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != 1 || results[0].Err == nil {
			t.Errorf("%s: not refused: %+v", c.name, results)
			continue
		}
		if !strings.Contains(results[0].Err.Error(), c.want) {
			t.Errorf("%s: refused with %q, want %q", c.name, results[0].Err, c.want)
		}
		t.Logf("%s: %v", c.name, results[0].Err)
	}
}
