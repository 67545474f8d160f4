package mesh

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
)

// Table is the part of the weights table (wire/src/table.rs) the tests read.
type Table struct {
	// Version is the table's version.
	Version uint64 `json:"version"`
	// TTLMillis is the table's time-to-live.
	TTLMillis uint64 `json:"ttl_ms"`
	// Services are keyed by FQDN.
	Services map[string]struct {
		Endpoints []struct {
			Pod     string  `json:"pod"`
			Address string  `json:"address"`
			Weight  float64 `json:"weight"`
		} `json:"endpoints"`
	} `json:"services"`
}

// Weights is a service's weight per pod, normalised to sum 1.
func (t Table) Weights(fqdn string) map[string]float64 {
	out := map[string]float64{}
	sum := 0.0
	for _, e := range t.Services[fqdn].Endpoints {
		out[e.Pod] = e.Weight
		sum += e.Weight
	}
	for k := range out {
		out[k] /= sum
	}
	return out
}

// WeightServerArgs are the server's flags for the world: the file topology,
// operator weights applied at once (damping 1), a short TTL.
func WeightServerArgs(listen, topology, stateDir string, ttl time.Duration) []string {
	return []string{"--listen", listen, "--topology", topology, "--policy", "even",
		"--insecure-admin", "--damping", "1", "--recompute-interval", "200ms",
		"--table-ttl", ttl.String(), "--state-dir", stateDir}
}

// SetWeights sets operator weights of a service (short name) and waits
// until the served table carries them.
func SetWeights(server, service, fqdn string, weights map[string]float64) (Table, error) {
	body, err := json.Marshal(weights)
	if err != nil {
		return Table{}, err
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+server+"/admin/weights/"+service, strings.NewReader(string(body)))
	if err != nil {
		return Table{}, err
	}
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Table{}, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Table{}, fmt.Errorf("PUT /admin/weights/%s: %d %s", service, resp.StatusCode, answer)
	}
	want := normalise(weights)
	deadline := time.Now().Add(10 * time.Second)
	for {
		t, err := GetTable(server)
		if err == nil && sameWeights(t.Weights(fqdn), want) {
			return t, nil
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("table never served %v for %s (last: %v, %v)", want, fqdn, t.Weights(fqdn), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// GetTable fetches the served table.
func GetTable(server string) (Table, error) {
	resp, err := http.Get("http://" + server + "/v1/weights")
	if err != nil {
		return Table{}, err
	}
	defer resp.Body.Close()
	var t Table
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("GET /v1/weights: %d", resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&t)
	return t, err
}

func normalise(w map[string]float64) map[string]float64 {
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	out := map[string]float64{}
	for k, v := range w {
		out[k] = v / sum
	}
	return out
}

func sameWeights(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if math.Abs(a[k]-v) > 1e-6 {
			return false
		}
	}
	return true
}
