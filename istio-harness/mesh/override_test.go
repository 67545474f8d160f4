package mesh

import (
	"strings"
	"testing"
	"time"
)

// The override world: the filter stamps x-lb-host: ip:port, render-istio's
// Lua TrafficExtension (root namespace, after the filter by priority) sets
// Envoy's upstream override host. No subset, no istiod flag; the ingress has
// no per-pod route. The topology also names a ghost pod the cluster lacks.
func TestOverrideModeOnIstio(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Options{Mode: "override", Istiod: istiodBin, Dir: dir, TableTTL: tableTTL, Ghost: true})
	if err != nil {
		t.Fatalf("start the override world: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.Logs(60))
		}
		s.Close()
	})
	profile, frontend := s.SidecarClient("profile"), s.GatewayClient("frontend")
	profileW := map[string]float64{"profile-0": 0.6, "profile-1": 0.3, "profile-2": 0.1}
	frontendW := map[string]float64{"frontend-0": 0.2, "frontend-1": 0.5, "frontend-2": 0.3}
	setWeights(t, s, "profile", profileW)
	setWeights(t, s, "frontend", frontendW)
	for _, c := range []struct {
		client *Client
		want   map[string]float64
	}{{profile, profileW}, {frontend, frontendW}} {
		if err := WaitStamped(c.client, "override", s.World, 60*time.Second); err != nil {
			t.Error(err)
		} else if err := WaitSplit(c.client, c.want, "override", s.World, 15*time.Second); err != nil {
			t.Error(err)
		}
	}
	t.Run("split by the table through the sidecar", func(t *testing.T) {
		answers := mustMany(t, profile, 3000)
		if err := SplitCheck(answers, profileW, "override", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("profile (override): %v", Counts(answers))
	})
	t.Run("split by the table through the gateway", func(t *testing.T) {
		answers := mustMany(t, frontend, 3000)
		if err := SplitCheck(answers, frontendW, "override", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("frontend (override): %v", Counts(answers))
	})
	t.Run("pin through the sidecar and the gateway", func(t *testing.T) {
		if err := PinCheck(profile, s.PodsOf("profile"), 30); err != nil {
			t.Error(err)
		}
		if err := PinCheck(frontend, s.PodsOf("frontend"), 30); err != nil {
			t.Error(err)
		}
	})
	t.Run("a stamped pod that is gone falls back to balancing, never a 503", func(t *testing.T) {
		ghost := GhostPod()
		setWeights(t, s, "geo", map[string]float64{"geo-0": 0, "geo-1": 0, ghost.Name: 1})
		geo := s.SidecarClient("geo")
		var answers []Echo
		for deadline := time.Now().Add(10 * time.Second); ; {
			answers = mustMany(t, geo, 400)
			if GhostCheck(answers, ghost) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err := GhostCheck(answers, ghost); err != nil {
			t.Error(err)
		}
		t.Logf("geo, every request stamped for the gone %s: %v", ghost.Addr(), Counts(answers))
	})
	t.Run("the filter runs before the override extension, both before the router", func(t *testing.T) {
		for _, e := range []*Envoy{s.Sidecar, s.Gateway} {
			dump, err := e.ConfigDump()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dump, "setUpstreamOverrideHost") {
				t.Errorf("%s: no override-host Lua in the config", e.Name)
			}
			chains, err := HTTPFilterChains(dump)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, c := range chains {
				if index(c, "stateful_session") >= 0 {
					t.Errorf("%s: override mode needs no stateful session filter: %v", e.Name, c)
				}
				plugin, lua, router := index(c, "mplb-filter"), index(c, "mplb-override-host"), index(c, "envoy.filters.http.router")
				if plugin < 0 {
					continue
				}
				checked++
				if lua < 0 || router < 0 || plugin > lua || lua > router {
					t.Errorf("%s filter order %v: want mplb-filter < mplb-override-host < router", e.Name, c)
				}
			}
			if checked == 0 {
				t.Errorf("%s: no HTTP filter chain holds the filter: %v", e.Name, chains)
			} else {
				t.Logf("%s HTTP filter chain: %v", e.Name, chains[0])
			}
		}
	})
	t.Run("no rejected config, no push errors", func(t *testing.T) { noRejections(t, s, s.Gateway, s.Sidecar) })
	t.Run("weight server stopped: unstamped, default balancing", func(t *testing.T) {
		s.WeightServer.Stop()
		time.Sleep(tableTTL + 1500*time.Millisecond)
		var answers []Echo
		for deadline := time.Now().Add(5 * time.Second); ; {
			answers = mustMany(t, profile, 300)
			if FallbackCheck(answers) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err := FallbackCheck(answers); err != nil {
			t.Error(err)
		}
	})
}
