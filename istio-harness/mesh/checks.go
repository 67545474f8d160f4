package mesh

import (
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PinCheck: n requests per pod naming it in x-lb-endpt all reach that pod.
func PinCheck(c *Client, pods []Pod, n int) error {
	for _, p := range pods {
		answers, err := c.Many(n, 4, map[string]string{"x-lb-endpt": p.Name})
		if err != nil {
			return fmt.Errorf("pin %s: %w", p.Name, err)
		}
		for _, a := range answers {
			if a.Status != http.StatusOK || a.Pod != p.Name {
				return fmt.Errorf("pin %s via %s: got status %d from pod %q", p.Name, c.URL, a.Status, a.Pod)
			}
		}
	}
	return nil
}

// Counts is answers per pod.
func Counts(answers []Echo) map[string]int {
	out := map[string]int{}
	for _, a := range answers {
		out[a.Pod]++
	}
	return out
}

// SplitCheck: every answer is a 200 stamped with the pod that answered
// (subset mode: x-lb-endpt is its name; session mode: x-lb-session decodes
// to its address), and each pod's share is within tolerance of its weight.
func SplitCheck(answers []Echo, want map[string]float64, mode string, world World, tolerance float64) error {
	if len(answers) == 0 {
		return fmt.Errorf("no answers")
	}
	for _, a := range answers {
		if a.Status != http.StatusOK {
			return fmt.Errorf("status %d", a.Status)
		}
		if err := stampedFor(a, mode, world); err != nil {
			return err
		}
	}
	counts := Counts(answers)
	var report []string
	bad := false
	for pod, w := range want {
		got := float64(counts[pod]) / float64(len(answers))
		report = append(report, fmt.Sprintf("%s %.3f (weight %.3f)", pod, got, w))
		if math.Abs(got-w) > tolerance {
			bad = true
		}
	}
	for pod := range counts {
		if _, ok := want[pod]; !ok {
			bad = true
			report = append(report, fmt.Sprintf("%s: not in the table", pod))
		}
	}
	sort.Strings(report)
	if bad {
		return fmt.Errorf("split off by more than %.2f over %d requests: %s", tolerance, len(answers), strings.Join(report, ", "))
	}
	return nil
}

// stampedFor checks an answer carries the filter's stamp for its own pod.
func stampedFor(a Echo, mode string, world World) error {
	switch mode {
	case "session":
		raw, err := base64.StdEncoding.DecodeString(a.Session)
		if err != nil || a.Session == "" {
			return fmt.Errorf("pod %s got x-lb-session %q (not base64 ip:port)", a.Pod, a.Session)
		}
		p, _ := world.PodByName(a.Pod)
		if string(raw) != p.Addr() {
			return fmt.Errorf("pod %s (%s) answered a request whose session names %s", a.Pod, p.Addr(), raw)
		}
		if a.Endpoint != "" {
			return fmt.Errorf("session mode left x-lb-endpt %q", a.Endpoint)
		}
	case "override":
		p, _ := world.PodByName(a.Pod)
		if a.Host != p.Addr() {
			return fmt.Errorf("pod %s (%s) answered a request stamped x-lb-host %q", a.Pod, p.Addr(), a.Host)
		}
		if a.Endpoint != "" {
			return fmt.Errorf("override mode left x-lb-endpt %q", a.Endpoint)
		}
	default:
		if a.Endpoint != a.Pod {
			return fmt.Errorf("pod %s answered a request stamped x-lb-endpt %q", a.Pod, a.Endpoint)
		}
	}
	return nil
}

// WaitStamped waits until requests through c come back stamped (the filter
// got its module over ECDS and its first table).
func WaitStamped(c *Client, mode string, world World, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		a, err := c.Get(nil)
		switch {
		case err != nil:
			last = err.Error()
		case a.Status != http.StatusOK:
			last = fmt.Sprintf("status %d", a.Status)
		default:
			if err := stampedFor(a, mode, world); err == nil {
				return nil
			} else {
				last = err.Error()
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s (%s): never stamped within %s; last: %s", c.URL, c.Authority, timeout, last)
}

// StaleCheck: a client-set x-lb-endpt naming another service's pod is
// replaced by a pod of the destination, never followed.
func StaleCheck(c *Client, service, stale string, n int) error {
	answers, err := c.Many(n, 4, map[string]string{"x-lb-endpt": stale})
	if err != nil {
		return err
	}
	for _, a := range answers {
		if a.Status != http.StatusOK {
			return fmt.Errorf("stale %q: status %d", stale, a.Status)
		}
		if !strings.HasPrefix(a.Pod, service+"-") || a.Endpoint != a.Pod {
			return fmt.Errorf("stale %q: answered by %q with x-lb-endpt %q", stale, a.Pod, a.Endpoint)
		}
	}
	return nil
}

// FallbackCheck: with no fresh table, every request succeeds unstamped
// through Istio's default route and more than one pod serves.
func FallbackCheck(answers []Echo) error {
	for _, a := range answers {
		if a.Status != http.StatusOK {
			return fmt.Errorf("status %d without a table", a.Status)
		}
		if a.Endpoint != "" || a.Session != "" || a.Host != "" {
			return fmt.Errorf("stamped without a fresh table: x-lb-endpt %q x-lb-session %q x-lb-host %q",
				a.Endpoint, a.Session, a.Host)
		}
	}
	if c := Counts(answers); len(c) < 2 {
		return fmt.Errorf("default route served by %v only", c)
	}
	return nil
}

// RejectCheck: the Envoy accepted every update (no *.update_rejected, no
// ECDS config_fail) and received listeners, clusters and the filter.
func RejectCheck(e *Envoy) error {
	stats, err := e.Stats("update_rejected|update_success|config_fail|config_reload")
	if err != nil {
		return err
	}
	var rejected []string
	reloads := 0
	for k, v := range stats {
		if (strings.HasSuffix(k, "update_rejected") || strings.HasSuffix(k, "config_fail")) && v != 0 {
			rejected = append(rejected, fmt.Sprintf("%s=%d", k, v))
		}
		if strings.HasPrefix(k, "extension_config_discovery.") && strings.HasSuffix(k, "config_reload") {
			reloads += int(v)
		}
	}
	if len(rejected) > 0 {
		sort.Strings(rejected)
		return fmt.Errorf("%s rejected config: %s", e.Name, strings.Join(rejected, ", "))
	}
	for _, k := range []string{"listener_manager.lds.update_success", "cluster_manager.cds.update_success"} {
		if stats[k] == 0 {
			return fmt.Errorf("%s: %s is 0 (no config received)", e.Name, k)
		}
	}
	if reloads == 0 {
		return fmt.Errorf("%s: no ECDS config_reload (the filter never arrived)", e.Name)
	}
	return nil
}

var metricLine = regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

// ControlPlaneErrors are istiod's error metrics that are not zero: NACKs
// (pilot_total_xds_rejects and the per-type *_reject), internal errors,
// push-context errors, and build/send errors (pilot_xds_pushes *_senderr,
// *_builderr).
func ControlPlaneErrors(httpAddr string) ([]string, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var bad []string
	pushes := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		name, labels := m[1], m[2]
		isErr := name == "pilot_total_xds_rejects" || name == "pilot_total_xds_internal_errors" ||
			name == "pilot_xds_push_context_errors" || strings.HasSuffix(name, "_reject") ||
			(name == "pilot_xds_pushes" && (strings.Contains(labels, "senderr") || strings.Contains(labels, "builderr")))
		if isErr && v != 0 {
			bad = append(bad, line)
		}
		if name == "pilot_xds_pushes" && !isErr {
			pushes += v
		}
	}
	if pushes == 0 {
		return nil, fmt.Errorf("istiod /metrics shows no pushes (are its metrics exported?)")
	}
	return bad, nil
}

// GhostCheck: every request was stamped for the ghost (a pod the table
// names and the cluster does not have) and still succeeded, balanced over
// more than one live pod: override mode's fallback, never a 503.
func GhostCheck(answers []Echo, ghost Pod) error {
	for _, a := range answers {
		if a.Status != http.StatusOK {
			return fmt.Errorf("status %d for a request stamped for the gone pod %s", a.Status, ghost.Addr())
		}
		if a.Host != ghost.Addr() {
			return fmt.Errorf("pod %s got x-lb-host %q, want the ghost's %s", a.Pod, a.Host, ghost.Addr())
		}
	}
	if c := Counts(answers); len(c) < 2 {
		return fmt.Errorf("the fallback was served by %v only", c)
	}
	return nil
}

// WaitSplit waits until requests through c follow want (within 0.08 over
// 300 requests): a table the filter just got replaces the one it had
// within a poll interval, and a single stamped answer can match by chance.
func WaitSplit(c *Client, want map[string]float64, mode string, world World, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		answers, err := c.Many(300, 4, nil)
		if err == nil {
			err = SplitCheck(answers, want, mode, world, 0.08)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (%s): the split never followed %v within %s: %w", c.URL, c.Authority, want, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
