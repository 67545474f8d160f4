package mesh

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// istiodBin is the mplb-istiod the tests run: MPLB_ISTIOD, else built here
// (into the Go build cache's neighbourhood, so a second run is quick).
var istiodBin string

func TestMain(m *testing.M) {
	istiodBin = os.Getenv("MPLB_ISTIOD")
	var tmp string
	if istiodBin == "" {
		var err error
		tmp, err = os.MkdirTemp("", "mplb-istiod-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		istiodBin = filepath.Join(tmp, "mplb-istiod")
		cmd := exec.Command("go", "build", "-o", istiodBin, "../cmd/mplb-istiod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building mplb-istiod:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if tmp != "" {
		_ = os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// tableTTL is the weight server's table TTL in these worlds.
const tableTTL = 3 * time.Second

func start(t *testing.T, mode string, mutate func(string) string) *Stack {
	t.Helper()
	dir := t.TempDir()
	s, err := Start(Options{Mode: mode, Istiod: istiodBin, Dir: dir, TableTTL: tableTTL, MutateRouting: mutate})
	if err != nil {
		t.Fatalf("start the %s world: %v", mode, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.Logs(60))
		}
		s.Close()
	})
	return s
}

func setWeights(t *testing.T, s *Stack, service string, w map[string]float64) {
	t.Helper()
	fqdn := s.PodsOf(service)[0].FQDN()
	if _, err := SetWeights(s.World.WeightServer.Addr(), service, fqdn, w); err != nil {
		t.Fatal(err)
	}
}

func noRejections(t *testing.T, s *Stack, envoys ...*Envoy) {
	t.Helper()
	for _, e := range envoys {
		if err := RejectCheck(e); err != nil {
			t.Error(err)
		}
	}
	bad, err := ControlPlaneErrors(s.IstiodHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("istiod reports errors: %v", bad)
	}
}

// The subset world: committed manifests + render-istio (subset mode).
func TestSubsetModeOnIstio(t *testing.T) {
	s := start(t, "subset", nil)
	profile, frontend := s.SidecarClient("profile"), s.GatewayClient("frontend")
	profileW := map[string]float64{"profile-0": 0.6, "profile-1": 0.3, "profile-2": 0.1}
	frontendW := map[string]float64{"frontend-0": 0.5, "frontend-1": 0.2, "frontend-2": 0.3}
	setWeights(t, s, "profile", profileW)
	setWeights(t, s, "frontend", frontendW)
	// Not fatal: when routing is broken, the subtests below say what fails.
	for _, c := range []*Client{profile, frontend} {
		if err := WaitStamped(c, "subset", s.World, 30*time.Second); err != nil {
			t.Error(err)
		}
	}

	t.Run("the gateway listens on its pod's address only", func(t *testing.T) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.GatewayPort), time.Second); err == nil {
			c.Close()
			t.Errorf("the gateway's listener answers on 127.0.0.1:%d: bound to the wildcard", s.GatewayPort)
		}
	})
	t.Run("pin through the gateway", func(t *testing.T) {
		if err := PinCheck(frontend, s.PodsOf("frontend"), 30); err != nil {
			t.Error(err)
		}
	})
	t.Run("pin through the sidecar", func(t *testing.T) {
		if err := PinCheck(profile, s.PodsOf("profile"), 30); err != nil {
			t.Error(err)
		}
	})
	t.Run("split by the table through the sidecar", func(t *testing.T) {
		answers, err := profile.Many(3000, 8, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := SplitCheck(answers, profileW, "subset", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("profile: %v", Counts(answers))
	})
	t.Run("split by the table through the gateway", func(t *testing.T) {
		answers, err := frontend.Many(3000, 8, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := SplitCheck(answers, frontendW, "subset", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("frontend: %v", Counts(answers))
	})
	t.Run("stale header of another service is replaced", func(t *testing.T) {
		if err := StaleCheck(profile, "profile", "geo-0", 200); err != nil {
			t.Error(err)
		}
		if err := StaleCheck(frontend, "frontend", "profile-1", 200); err != nil {
			t.Error(err)
		}
	})
	t.Run("no rejected config, no push errors", func(t *testing.T) { noRejections(t, s, s.Gateway, s.Sidecar) })
	t.Run("weight server stopped: default route after the TTL", func(t *testing.T) {
		s.WeightServer.Stop()
		stopped := time.Now()
		// The table stays fresh for its TTL after the last good poll
		// (poll every 1 s), plus one tick of the filter's clock.
		time.Sleep(tableTTL + 1500*time.Millisecond)
		var answers []Echo
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; {
			answers, err = profile.Many(300, 4, nil)
			if err == nil && FallbackCheck(answers) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := FallbackCheck(answers); err != nil {
			t.Errorf("%.1fs after the stop: %v", time.Since(stopped).Seconds(), err)
		}
		if err := FallbackCheck(mustMany(t, frontend, 300)); err != nil {
			t.Errorf("gateway: %v", err)
		}
		t.Logf("without a table, profile: %v", Counts(answers))
	})
}

func mustMany(t *testing.T, c *Client, n int) []Echo {
	t.Helper()
	answers, err := c.Many(n, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	return answers
}

// The session world: render-istio --mode session labels the Services,
// istiod's persistent-session feature is on, the filter stamps x-lb-session.
func TestSessionModeOnIstio(t *testing.T) {
	s := start(t, "session", nil)
	profile := s.SidecarClient("profile")
	w := map[string]float64{"profile-0": 0.2, "profile-1": 0.7, "profile-2": 0.1}
	setWeights(t, s, "profile", w)
	if err := WaitStamped(profile, "session", s.World, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	answers, err := profile.Many(3000, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := SplitCheck(answers, w, "session", s.World, 0.03); err != nil {
		t.Error(err)
	}
	t.Logf("profile (session): %v", Counts(answers))
	dump, err := s.Sidecar.ConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"envoy.filters.http.stateful_session", `"name": "x-lb-session"`} {
		if !strings.Contains(dump, want) {
			t.Errorf("sidecar config has no %s", want)
		}
	}
	// Where Istio puts the WasmPlugin (no phase): before the stateful
	// session filter, which must see the header the filter stamps, and
	// before the router.
	chains, err := HTTPFilterChains(dump)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range chains {
		plugin, session, router := index(c, "/hotel.mplb-filter~"), index(c, "envoy.filters.http.stateful_session"), index(c, "envoy.filters.http.router")
		if plugin < 0 {
			continue
		}
		checked++
		if session < 0 || router < 0 || plugin > session || session > router {
			t.Errorf("filter order %v: want the mplb WasmPlugin < stateful_session < router", c)
		}
	}
	if checked == 0 {
		t.Errorf("no HTTP filter chain holds hotel.mplb-filter: %v", chains)
	}
	t.Logf("outbound HTTP filter chain: %v", chains[0])
	// The gateway too: Istio adds the stateful-session filter to its HTTP
	// chain and the per-route config on the ingress's route (the
	// VirtualService's destination is the labelled Service).
	t.Run("split by the table through the gateway", func(t *testing.T) {
		frontend := s.GatewayClient("frontend")
		fw := map[string]float64{"frontend-0": 0.5, "frontend-1": 0.1, "frontend-2": 0.4}
		setWeights(t, s, "frontend", fw)
		if err := WaitSplit(frontend, fw, "session", s.World, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		answers := mustMany(t, frontend, 3000)
		if err := SplitCheck(answers, fw, "session", s.World, 0.03); err != nil {
			t.Error(err)
		}
		t.Logf("frontend (session, gateway): %v", Counts(answers))
	})
	// The session world's ingress is envoyfilter/override/hotel-ingress.yaml
	// (no per-pod routes).
	noRejections(t, s, s.Sidecar, s.Gateway)
}

var profileSubsetRef = regexp.MustCompile(`(?m)^(\s+subset: )(profile-[0-9]+)$`)

// The pin check fails when render-istio's routes name subsets its
// DestinationRules do not define (the check is not vacuous): profile's
// routes are broken, frontend's are not and show the world is up.
func TestPinFailsWhenSubsetNamesBreak(t *testing.T) {
	s := start(t, "subset", func(y string) string {
		return profileSubsetRef.ReplaceAllString(y, "${1}${2}-broken")
	})
	frontend := s.GatewayClient("frontend")
	if err := WaitStamped(frontend, "subset", s.World, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := PinCheck(frontend, s.PodsOf("frontend"), 5); err != nil {
		t.Fatalf("the unbroken service does not pin either: %v", err)
	}
	err := PinCheck(s.SidecarClient("profile"), s.PodsOf("profile"), 5)
	if err == nil {
		t.Fatal("pinned requests reached their pods with broken subset names")
	}
	t.Logf("as expected: %v", err)
}

// index is the position of the first name containing part, or -1.
func index(list []string, part string) int {
	for i, n := range list {
		if strings.Contains(n, part) {
			return i
		}
	}
	return -1
}
