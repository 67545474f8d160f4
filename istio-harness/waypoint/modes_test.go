package waypoint

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// startMode starts the waypoint world in a mode ("": override) and stops it
// at cleanup, with the world's logs when the test failed.
func startMode(t *testing.T, mode string, ambientPods bool) *Stack {
	t.Helper()
	s, err := Start(Options{Istiod: istiodBin, Dir: t.TempDir(), TableTTL: tableTTL, Mode: mode, AmbientPods: ambientPods})
	if err != nil {
		t.Fatalf("start the waypoint world (mode %q, ambient pods %v): %v", mode, ambientPods, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.Logs(60))
		}
		s.Close()
	})
	return s
}

// Subset mode on a real waypoint: the committed waypoint WasmPlugin in
// `mode: subset` and render-istio's default (subset) output, its
// DestinationRules with a subset per pod (label
// statefulset.kubernetes.io/pod-name) and its VirtualServices with a route
// per pod on x-lb-endpt. Istio applies a VirtualService whose host is a
// Service bound to the waypoint to the waypoint's chain for that Service
// (listener_waypoint.go), and a route's subset becomes an
// `inbound-vip|<port>|http/<subset>|<host>` cluster holding the subset's
// pods: each stamped request reaches the pod the filter picked. Unlike
// override mode, this holds with the pods in ambient too: the waypoint
// picks the subset's cluster, whatever its hosts' addresses
// (`envoy://connect_originate/<pod ip>:<port>` for ambient pods).
func TestSubsetModeOnAWaypoint(t *testing.T) {
	for _, ambient := range []bool{false, true} {
		name := "pods outside ambient"
		if ambient {
			name = "pods in ambient"
		}
		t.Run(name, func(t *testing.T) { subsetOnAWaypoint(t, ambient) })
	}
}

func subsetOnAWaypoint(t *testing.T, ambient bool) {
	s := startMode(t, "subset", ambient)
	profile, err := s.Client("profile")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"profile-0": 0.6, "profile-1": 0.3, "profile-2": 0.1}
	setWeights(t, s, "profile", want)
	if err := mesh.WaitStamped(profile, "subset", s.World, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := mesh.WaitSplit(profile, want, "subset", s.World, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Run("render-istio's per-pod routes and subset clusters are on the waypoint", func(t *testing.T) {
		dump, err := s.Waypoint.ConfigDump()
		if err != nil {
			t.Fatal(err)
		}
		routes, err := headerRoutes(dump, "x-lb-endpt")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.PodsOf("profile") {
			cluster := fmt.Sprintf("inbound-vip|%d|http/%s|%s", p.Port, p.Name, p.FQDN())
			if routes[p.Name] != cluster {
				t.Errorf("route x-lb-endpt: %s goes to %q, want %q (routes %v)", p.Name, routes[p.Name], cluster, routes)
			}
			hosts, err := clusterHosts(s.Waypoint, cluster)
			if err != nil {
				t.Fatal(err)
			}
			host := p.Addr()
			if ambient {
				host = "envoy://connect_originate/" + host
			}
			if len(hosts) != 1 || hosts[0] != host {
				t.Errorf("%s holds %v, want only %s", cluster, hosts, host)
			}
		}
		t.Logf("the waypoint's x-lb-endpt routes: %v", routes)
	})
	t.Run("split by the table through the waypoint", func(t *testing.T) {
		answers, err := profile.Many(3000, 8, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mesh.SplitCheck(answers, want, "subset", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("profile through the waypoint (subset): %v", mesh.Counts(answers))
	})
	t.Run("pin through the waypoint", func(t *testing.T) {
		if err := mesh.PinCheck(profile, s.PodsOf("profile"), 30); err != nil {
			t.Error(err)
		}
	})
	t.Run("stale header", func(t *testing.T) {
		if err := mesh.StaleCheck(profile, "profile", "geo-0", 30); err != nil {
			t.Error(err)
		}
	})
	if ambient {
		t.Run("the waypoint reached every pod over HBONE", func(t *testing.T) {
			connects := s.Tunnels.Connects()
			for _, p := range s.PodsOf("profile") {
				if connects[p.Name] == 0 {
					t.Errorf("no HBONE tunnel reached %s: %v", p.Name, connects)
				}
			}
			t.Logf("CONNECTs per pod: %v", connects)
		})
	}
	t.Run("no rejected config, no push errors", func(t *testing.T) {
		noRejects(t, s)
	})
}

// Session mode on a real waypoint: the WasmPlugin in `mode: session`,
// render-istio --mode session's label on the Services and
// PILOT_ENABLE_PERSISTENT_SESSION_FILTER on istiod. The filter stamps
// x-lb-session by the table, but Istio adds no stateful_session filter to a
// waypoint's chains (they are built as the inbound class,
// listener_builder.go), so nothing follows the header: requests are
// balanced as if unstamped. The test pins that; if the session is ever
// followed, the docs must change.
func TestSessionModeIsNotFollowedOnAWaypoint(t *testing.T) {
	s := startMode(t, "session", false)
	profile, err := s.Client("profile")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"profile-0": 0.8, "profile-1": 0.15, "profile-2": 0.05}
	setWeights(t, s, "profile", want)
	byAddr := map[string]string{}
	for _, p := range s.PodsOf("profile") {
		byAddr[p.Addr()] = p.Name
	}
	picks := func(answers []mesh.Echo) map[string]int {
		out := map[string]int{}
		for _, a := range answers {
			raw, _ := base64.StdEncoding.DecodeString(a.Session)
			out[byAddr[string(raw)]]++
		}
		return out
	}
	var answers []mesh.Echo
	var last error
	for deadline := time.Now().Add(60 * time.Second); ; {
		if answers, last = profile.Many(300, 4, nil); last == nil {
			last = within(picks(answers), want, 0.08)
		}
		if last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session stamps never followed the table: %v", last)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if answers, err = profile.Many(3000, 8, nil); err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, a := range answers {
		if a.Status != http.StatusOK {
			t.Fatalf("status %d through the waypoint", a.Status)
		}
		raw, _ := base64.StdEncoding.DecodeString(a.Session)
		if byAddr[string(raw)] == a.Pod {
			matched++
		}
	}
	if err := within(picks(answers), want, 0.03); err != nil {
		t.Errorf("the filter's picks on the waypoint: %v", err)
	}
	share := float64(matched) / float64(len(answers))
	t.Logf("3,000 requests: x-lb-session names %v, answered %v; %.1f%% answered by the pod named",
		picks(answers), mesh.Counts(answers), 100*share)
	if share > 0.9 {
		t.Errorf("%.1f%% of requests reached the pod their session names: session mode works on a waypoint; update the docs", 100*share)
	}
	if err := mesh.SplitCheck(answers, want, "session", s.World, 0.03); err == nil {
		t.Error("the split follows the table in session mode on a waypoint; update the docs")
	}
	dump, err := s.Waypoint.ConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := mesh.HTTPFilterChains(dump)
	if err != nil {
		t.Fatal(err)
	}
	withFilter := 0
	for _, c := range chains {
		if index(c, "stateful_session") >= 0 {
			t.Errorf("a stateful_session filter on the waypoint: %v", c)
		}
		if index(c, "mplb-filter-waypoint") >= 0 {
			withFilter++
		}
	}
	if withFilter == 0 {
		t.Errorf("no waypoint chain holds the filter: %v", chains)
	}
	if !strings.Contains(s.Kube, "istio.io/persistent-session") {
		t.Errorf("the Services lack render-istio's session label:\n%s", s.Kube)
	}
	noRejects(t, s)
}

func noRejects(t *testing.T, s *Stack) {
	t.Helper()
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
}

// headerRoutes are the routes of a config dump that match an exact value
// of header: value -> the route's cluster.
func headerRoutes(dump, header string) (map[string]string, error) {
	var v any
	if err := json.Unmarshal([]byte(dump), &v); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			match, _ := n["match"].(map[string]any)
			action, _ := n["route"].(map[string]any)
			if match != nil && action != nil {
				headers, _ := match["headers"].([]any)
				for _, h := range headers {
					hm, _ := h.(map[string]any)
					sm, _ := hm["string_match"].(map[string]any)
					exact, _ := sm["exact"].(string)
					if hm["name"] == header && exact != "" {
						cluster, _ := action["cluster"].(string)
						out[exact] = cluster
					}
				}
			}
			keys := make([]string, 0, len(n))
			for k := range n {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(n[k])
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
