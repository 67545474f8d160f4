package waypoint

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
	"istio.io/istio/pkg/hbone"
)

// tableTTL is the weight server's table TTL in this world.
const tableTTL = 3 * time.Second

// Override mode on a real waypoint: requests from an ambient client (the
// test, in ztunnel's place) to the profile Service reach the waypoint over
// HBONE; Istio's generation runs the committed WasmPlugin, then
// render-istio's waypoint Lua, then the router, and each request reaches
// the pod the filter stamped.
func TestOverrideModeOnAWaypoint(t *testing.T) {
	s := startMode(t, "", false)
	// One client (one HBONE connection) per destination service (see
	// ProxyVersion).
	profile, err := s.Client("profile")
	if err != nil {
		t.Fatal(err)
	}
	geo, err := s.Client("geo")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"profile-0": 0.2, "profile-1": 0.3, "profile-2": 0.5}
	setWeights(t, s, "profile", want)
	if err := mesh.WaitStamped(profile, "override", s.World, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := mesh.WaitSplit(profile, want, "override", s.World, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Run("split by the table through the waypoint", func(t *testing.T) {
		answers, err := profile.Many(3000, 8, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mesh.SplitCheck(answers, want, "override", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("profile through the waypoint (override): %v", mesh.Counts(answers))
	})
	t.Run("pin through the waypoint", func(t *testing.T) {
		if err := mesh.PinCheck(profile, s.PodsOf("profile"), 30); err != nil {
			t.Error(err)
		}
	})
	t.Run("a stamped pod that is gone falls back to balancing, never a 503", func(t *testing.T) {
		ghost := s.Ghosts[0]
		setWeights(t, s, "geo", map[string]float64{"geo-0": 0, "geo-1": 0, ghost.Name: 1})
		var answers []mesh.Echo
		for deadline := time.Now().Add(10 * time.Second); ; {
			answers, err = geo.Many(400, 4, nil)
			if err != nil {
				t.Fatal(err)
			}
			if mesh.GhostCheck(answers, ghost) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err := mesh.GhostCheck(answers, ghost); err != nil {
			t.Error(err)
		}
		t.Logf("geo, every request stamped for the gone %s: %v", ghost.Addr(), mesh.Counts(answers))
	})
	t.Run("the filter runs before the override extension, both before the router", func(t *testing.T) {
		dump, err := s.Waypoint.ConfigDump()
		if err != nil {
			t.Fatal(err)
		}
		chains, err := mesh.HTTPFilterChains(dump)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, c := range chains {
			plugin, lua, router := index(c, "mplb-filter-waypoint"), index(c, "mplb-override-host-waypoint"), index(c, "envoy.filters.http.router")
			if index(c, "stateful_session") >= 0 || index(c, "peer_metadata") >= 0 {
				t.Errorf("waypoint chain %v: no stateful_session or peer metadata expected", c)
			}
			if plugin < 0 {
				continue
			}
			checked++
			if lua < 0 || router < 0 || plugin > lua || lua > router {
				t.Errorf("waypoint filter order %v: want mplb-filter-waypoint < mplb-override-host-waypoint < router", c)
			}
		}
		// one chain per service using the waypoint, and Istio's
		// direct-http chain (requests addressed to a pod, not a VIP)
		if checked != len(WaypointServices)+1 {
			t.Errorf("%d chains hold the filter, want one per service using the waypoint (%v) and direct-http: %v",
				checked, WaypointServices, chains)
		} else {
			t.Logf("waypoint HTTP filter chain: %v", chains[len(chains)-1])
		}
	})
	t.Run("HBONE is mTLS with the workload certificates served over SDS", func(t *testing.T) {
		served := s.SDS.Served()
		if served["default"] == 0 || served["ROOTCA"] == 0 {
			t.Errorf("the waypoint did not fetch both secrets over SDS: %v", served)
		}
		// a client whose certificate another CA signed is refused
		other, err := NewCA()
		if err != nil {
			t.Fatal(err)
		}
		own, err := other.Issue(SpiffeID("hotel", "frontend"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := other.ClientTLS(own, SpiffeID("hotel", "waypoint"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.InsecureSkipVerify, cfg.VerifyPeerCertificate = true, nil
		timeout := 3 * time.Second
		d := hbone.NewDialer(hbone.Config{ProxyAddress: fmt.Sprintf("%s:%d", s.Pod.IP, HBONEPort), TLS: cfg, Timeout: &timeout})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("%s:8081", s.VIPs["profile"])); err == nil {
			c.Close()
			t.Error("the waypoint accepted a tunnel from a client of another CA")
		} else {
			t.Logf("as expected: %v", err)
		}
	})
	t.Run("no rejected config, no push errors", func(t *testing.T) {
		if err := mesh.RejectCheck(s.Waypoint); err != nil {
			t.Error(err)
		}
		bad, err := mesh.ControlPlaneErrors(s.IstiodHTTP)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("istiod reports errors: %v", bad)
		}
	})
	t.Run("weight server stopped: unstamped, default balancing", func(t *testing.T) {
		s.WeightServer.Stop()
		time.Sleep(tableTTL + 1500*time.Millisecond)
		var answers []mesh.Echo
		for deadline := time.Now().Add(5 * time.Second); ; {
			answers, err = profile.Many(300, 4, nil)
			if err == nil && mesh.FallbackCheck(answers) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := mesh.FallbackCheck(answers); err != nil {
			t.Error(err)
		}
	})
}

func setWeights(t *testing.T, s *Stack, service string, w map[string]float64) {
	t.Helper()
	fqdn := s.PodsOf(service)[0].FQDN()
	if _, err := mesh.SetWeights(s.World.WeightServer.Addr(), service, fqdn, w); err != nil {
		t.Fatal(err)
	}
}
