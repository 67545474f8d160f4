package mesh

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Apply is how long one table change took to reach the data path.
type Apply struct {
	// Target is the pod the change gave all the weight.
	Target string `json:"target"`
	// Served is from the PUT to the weight server serving the new table.
	Served time.Duration `json:"served_ns"`
	// Followed is from the PUT to the first request through the sidecar
	// answered by Target (which had weight 0 before the change).
	Followed time.Duration `json:"followed_ns"`
}

// PutOperatorWeights sets operator weights of a service (short name); pods
// it does not name get 0.
func PutOperatorWeights(server, service string, weights map[string]float64) error {
	body, err := json.Marshal(weights)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+server+"/admin/weights/"+service, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /admin/weights/%s: %d %s", service, resp.StatusCode, answer)
	}
	return nil
}

// ApplyChange gives all of the scale service's weight to target (through
// the weight server's admin API) and times the table being served and the
// sidecar's requests following it: sequential requests through the sidecar
// until one is answered by target, then 30 more that must all be target's
// and stamped for it. Bounded by limit.
func ApplyChange(s *Stack, mode string, target Pod, limit time.Duration) (Apply, error) {
	out := Apply{Target: target.Name}
	server := s.World.WeightServer.Addr()
	served := make(chan time.Duration, 1)
	t0 := time.Now()
	if err := PutOperatorWeights(server, ScaleService, map[string]float64{target.Name: 1}); err != nil {
		return out, err
	}
	go func() {
		for time.Since(t0) < limit {
			if t, err := GetTable(server); err == nil && t.Weights(target.FQDN())[target.Name] == 1 {
				served <- time.Since(t0)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		served <- -1
	}()
	c := s.SidecarClient(ScaleService)
	for {
		a, err := c.Get(nil)
		if err != nil {
			return out, err
		}
		if a.Status == http.StatusOK && a.Pod == target.Name {
			out.Followed = time.Since(t0)
			break
		}
		if time.Since(t0) > limit {
			return out, fmt.Errorf("requests never followed the table to %s within %s (last: %d from %q)",
				target.Name, limit, a.Status, a.Pod)
		}
	}
	out.Served = <-served
	if out.Served < 0 {
		return out, fmt.Errorf("the weight server never served %s: 1 within %s", target.Name, limit)
	}
	for i := 0; i < 30; i++ {
		a, err := c.Get(nil)
		if err != nil {
			return out, err
		}
		if a.Status != http.StatusOK || a.Pod != target.Name {
			return out, fmt.Errorf("after following %s: status %d from %q", target.Name, a.Status, a.Pod)
		}
		if err := stampedFor(a, mode, s.World); err != nil {
			return out, err
		}
	}
	return out, nil
}
