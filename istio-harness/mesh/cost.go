package mesh

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// utime and stime (100 on Linux for every architecture Envoy ships on).
const clockTick = 100

// ProcessCPU is the CPU time (user + system, all threads) a process has
// used, from /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at state (3).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// ProcessRSS is a process's resident set size in bytes (VmRSS).
func ProcessRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// Memory is an Envoy's memory: RSS and the allocator's view (admin /memory).
type Memory struct {
	// RSS is the process's resident set in bytes.
	RSS int64 `json:"rss"`
	// Allocated is admin /memory's `allocated` (bytes in use by Envoy's allocator).
	Allocated int64 `json:"allocated"`
	// HeapSize is admin /memory's `heap_size`.
	HeapSize int64 `json:"heap_size"`
}

// Memory reads the Envoy's RSS and admin /memory.
func (e *Envoy) Memory() (Memory, error) {
	var m Memory
	var err error
	if m.RSS, err = ProcessRSS(e.Pid()); err != nil {
		return m, err
	}
	body, err := adminGet(e.Admin, "/memory")
	if err != nil {
		return m, err
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return m, fmt.Errorf("/memory: %w", err)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(fmt.Sprint(raw[k]), 10, 64); return n }
	m.Allocated, m.HeapSize = num("allocated"), num("heap_size")
	return m, nil
}

func adminGet(admin, path string) ([]byte, error) {
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return body, err
}

// ConfigSize is the configuration Istio pushed to one Envoy, as its admin
// /config_dump shows it: bytes of compact JSON per xDS type, and counts.
type ConfigSize struct {
	// Bytes is compact JSON bytes per type: CDS, LDS, RDS, ECDS, EDS.
	Bytes map[string]int `json:"bytes"`
	// Clusters, Listeners and Routes count the dynamic clusters, listeners
	// and routes (over every route configuration's virtual hosts).
	Clusters, Listeners, Routes int
	// Endpoints counts the EDS endpoints over every cluster.
	Endpoints int
}

// NonEDS is CDS+LDS+RDS+ECDS bytes.
func (c ConfigSize) NonEDS() int {
	return c.Bytes["CDS"] + c.Bytes["LDS"] + c.Bytes["RDS"] + c.Bytes["ECDS"]
}

var dumpTypes = map[string]string{
	"ClustersConfigDump": "CDS", "ListenersConfigDump": "LDS", "RoutesConfigDump": "RDS",
	"EcdsConfigDump": "ECDS", "EndpointsConfigDump": "EDS",
}

// ConfigSize reads /config_dump?include_eds and measures each xDS type's
// dynamic part (the static bootstrap cluster and listener are left out).
func (e *Envoy) ConfigSize() (ConfigSize, error) {
	body, err := adminGet(e.Admin, "/config_dump?include_eds")
	if err != nil {
		return ConfigSize{}, err
	}
	var dump struct {
		Configs []map[string]json.RawMessage `json:"configs"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		return ConfigSize{}, err
	}
	out := ConfigSize{Bytes: map[string]int{}}
	for _, c := range dump.Configs {
		var typ string
		_ = json.Unmarshal(c["@type"], &typ)
		short, ok := dumpTypes[typ[strings.LastIndexByte(typ, '.')+1:]]
		if !ok {
			continue
		}
		for k, v := range c {
			if !strings.HasPrefix(k, "dynamic_") {
				continue
			}
			var list []any
			if json.Unmarshal(v, &list) != nil {
				continue
			}
			compact, _ := json.Marshal(list)
			out.Bytes[short] += len(compact)
			switch {
			case short == "CDS" && k == "dynamic_active_clusters":
				out.Clusters += len(list)
			case short == "LDS" && k == "dynamic_listeners":
				out.Listeners += len(list)
			case short == "RDS":
				out.Routes += countKey(list, "routes")
			case short == "EDS":
				out.Endpoints += countKey(list, "lb_endpoints")
			}
		}
	}
	return out, nil
}

// countKey sums the lengths of every list named key under n.
func countKey(n any, key string) int {
	total := 0
	switch n := n.(type) {
	case map[string]any:
		for k, c := range n {
			if l, ok := c.([]any); ok && k == key {
				total += len(l)
				continue
			}
			total += countKey(c, key)
		}
	case []any:
		for _, c := range n {
			total += countKey(c, key)
		}
	}
	return total
}

// Burst is one bounded request burst's outcome.
type Burst struct {
	// Requests is how many completed; Non200 how many of them were not 200.
	Requests, Non200 int
	// Wrong counts sampled answers that failed the burst's check.
	Wrong int
	// EnvoyCPU is the Envoy's CPU time over the burst; Wall its duration.
	EnvoyCPU, Wall time.Duration
}

// MicrosPerRequest is the Envoy's CPU per completed request in µs.
func (b Burst) MicrosPerRequest() float64 {
	if b.Requests == 0 {
		return 0
	}
	return float64(b.EnvoyCPU.Microseconds()) / float64(b.Requests)
}

// RunBurst sends n requests to the target's listener over `workers`
// keep-alive connections, bounded by `limit`; headers(i) gives request i's
// extra headers. Every 97th answer is decoded and given to check (nil:
// none). The target Envoy's CPU is read around it.
func RunBurst(t Target, n, workers int, limit time.Duration, headers func(i int) map[string]string,
	check func(i int, e Echo) error) (Burst, error) {
	url, authority := "http://"+t.Listener+"/", t.Authority
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var next, done, non200, wrong atomic.Int64
	var firstErr error
	var mu sync.Mutex
	pid := t.Envoy.Pid()
	cpu0, err := ProcessCPU(pid)
	if err != nil {
		return Burst{}, err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				status, e, err := oneRequest(ctx, client, url, authority, headers(i), i%97 == 0)
				if err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				done.Add(1)
				if status != http.StatusOK {
					non200.Add(1)
				} else if i%97 == 0 && check != nil && check(i, e) != nil {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	cpu1, err := ProcessCPU(pid)
	if err != nil {
		return Burst{}, err
	}
	b := Burst{Requests: int(done.Load()), Non200: int(non200.Load()), Wrong: int(wrong.Load()),
		EnvoyCPU: cpu1 - cpu0, Wall: wall}
	if firstErr == nil && b.Requests < n {
		firstErr = fmt.Errorf("burst cut at %s after %d of %d requests", limit, b.Requests, n)
	}
	return b, firstErr
}

func oneRequest(ctx context.Context, c *http.Client, url, authority string, headers map[string]string,
	decode bool) (int, Echo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, Echo{}, err
	}
	req.Host = authority
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, Echo{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, Echo{}, err
	}
	var e Echo
	if decode && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			return 0, Echo{}, fmt.Errorf("answer %q: %w", body, err)
		}
	}
	return resp.StatusCode, e, nil
}

// StampHeader is the header the filter would stamp, in mode, for pod p:
// what a pre-stamped request carries on the no-filter baseline.
func StampHeader(mode string, p Pod) map[string]string {
	switch mode {
	case "session":
		return map[string]string{"x-lb-session": base64.StdEncoding.EncodeToString([]byte(p.Addr()))}
	case "override":
		return map[string]string{"x-lb-host": p.Addr()}
	default:
		return map[string]string{"x-lb-endpt": p.Name}
	}
}

// StampCheck checks a sampled answer of the filter's sidecar: stamped for
// the pod that answered.
func StampCheck(mode string, w World) func(int, Echo) error {
	return func(_ int, e Echo) error { return stampedFor(e, mode, w) }
}

// Median of a non-empty list.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
