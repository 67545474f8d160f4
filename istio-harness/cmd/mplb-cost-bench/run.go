package main

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// Path is one request path's bursts on one sidecar.
type Path struct {
	// Bursts are the measured bursts (the warm-up is not among them).
	Bursts []mesh.Burst `json:"bursts"`
}

// Micros are the bursts' Envoy µs per request.
func (p Path) Micros() []float64 {
	var out []float64
	for _, b := range p.Bursts {
		out = append(out, b.MicrosPerRequest())
	}
	return out
}

// Median is the median Envoy µs per request.
func (p Path) Median() float64 { return mesh.Median(p.Micros()) }

// Added is the median over rounds of a's minus b's µs per request, the
// bursts of one round paired (they ran one after the other).
func Added(a, b Path) float64 {
	x, y := a.Micros(), b.Micros()
	var d []float64
	for i := 0; i < len(x) && i < len(y); i++ {
		d = append(d, x[i]-y[i])
	}
	return mesh.Median(d)
}

// Run is one world's figures: a mode and a size of profile.
type Run struct {
	Mode      string `json:"mode"`
	Endpoints int    `json:"endpoints"`
	// Ready is from starting the world to the first stamped request.
	Ready time.Duration `json:"ready_ns"`
	// Config and BareConfig are the configuration of the filter's sidecar
	// and of the bench client's sidecar.
	Config, BareConfig mesh.ConfigSize
	// Filter: unstamped requests through the filter's sidecar.
	Filter Path `json:"filter"`
	// Pinned: requests naming their pod in x-lb-endpt (spread as Stamped)
	// through the filter's sidecar: the filter's path without a pick.
	Pinned Path `json:"pinned"`
	// Stamped: requests carrying the stamp the filter would set (spread
	// over the pods as even weights would), through the sidecar without
	// the filter. Plain: unstamped, without the filter (Istio's default route).
	Stamped, Plain Path
	// IdleFilter and IdleBare are each sidecar's CPU ms per second at rest.
	IdleFilter, IdleBare float64
	// Memory and BareMemory are read after the bursts.
	Memory, BareMemory mesh.Memory
	// Applies are the timed table changes.
	Applies []mesh.Apply `json:"applies"`
	// Errors are what went wrong (a run with errors still reports what it measured).
	Errors []string `json:"errors,omitempty"`
}

func (r *Run) fail(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// burstLimit bounds one burst in time.
const burstLimit = 180 * time.Second

func runOne(cfg Config, istiod, mode string, n int, keep bool) *Run {
	r := &Run{Mode: mode, Endpoints: n}
	dir, err := os.MkdirTemp("", fmt.Sprintf("mplb-cost-%s-%d-", mode, n))
	if err != nil {
		r.fail("%v", err)
		return r
	}
	if keep {
		log.Printf("world files in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	t0 := time.Now()
	s, err := mesh.Start(mesh.Options{Mode: mode, Istiod: istiod, Dir: dir, TableTTL: 10 * time.Second,
		Scale: n, NoGateway: true})
	if err != nil {
		r.fail("start: %v", err)
		return r
	}
	mu.Lock()
	current = s
	mu.Unlock()
	defer func() {
		mu.Lock()
		s.Close()
		current = nil
		mu.Unlock()
	}()
	pods := s.PodsOf(mesh.ScaleService)
	if err := mesh.WaitStamped(s.SidecarClient(mesh.ScaleService), mode, s.World, 180*time.Second); err != nil {
		r.fail("%v\n%s", err, s.Logs(20))
		return r
	}
	r.Ready = time.Since(t0)
	log.Printf("stamped after %s", r.Ready.Round(time.Millisecond))
	if err := s.StartBareSidecar(); err != nil {
		r.fail("bare sidecar: %v", err)
		return r
	}
	if err := mesh.WaitListener(s.BareTarget(), mesh.StampHeader(mode, pods[0]), 120*time.Second); err != nil {
		r.fail("%v\n%s", err, s.Logs(20))
		return r
	}
	time.Sleep(2 * time.Second)
	if r.Config, err = s.Sidecar.ConfigSize(); err != nil {
		r.fail("config size: %v", err)
	}
	if r.BareConfig, err = s.Bare.ConfigSize(); err != nil {
		r.fail("bare config size: %v", err)
	}
	ft, bt := s.FilterTarget(), s.BareTarget()
	unstamped := func(int) map[string]string { return nil }
	pin := func(i int) map[string]string { return map[string]string{"x-lb-endpt": pods[i%len(pods)].Name} }
	stamped := func(i int) map[string]string { return mesh.StampHeader(mode, pods[i%len(pods)]) }
	paths := []struct {
		p       *Path
		name    string
		t       mesh.Target
		headers func(int) map[string]string
		check   func(int, mesh.Echo) error
	}{
		{&r.Filter, "filter", ft, unstamped, mesh.StampCheck(mode, s.World)},
		{&r.Pinned, "pinned, filter", ft, pin, spread(pods)},
		{&r.Stamped, "stamped, no filter", bt, stamped, spread(pods)},
		{&r.Plain, "plain, no filter", bt, unstamped, nil},
	}
	// Warm-up: every path once, enough requests to open each pod's connections.
	warm := max(cfg.Requests, 20*n)
	for _, p := range paths {
		if _, err := mesh.RunBurst(p.t, warm, cfg.Workers, burstLimit, p.headers, p.check); err != nil {
			r.fail("%s warm-up: %v", p.name, err)
			return r
		}
	}
	r.IdleFilter, r.IdleBare = idle(s.Sidecar), idle(s.Bare)
	// Measured bursts, the paths interleaved in each round.
	for i := 0; i < cfg.Reps; i++ {
		for _, p := range paths {
			b, err := mesh.RunBurst(p.t, cfg.Requests, cfg.Workers, burstLimit, p.headers, p.check)
			if err != nil {
				r.fail("%s burst %d: %v", p.name, i, err)
			}
			if b.Non200 > 0 || b.Wrong > 0 {
				r.fail("%s burst %d: %d not 200, %d sampled answers wrong", p.name, i, b.Non200, b.Wrong)
			}
			p.p.Bursts = append(p.p.Bursts, b)
			log.Printf("%s: %d requests in %s, Envoy CPU %s: %.1f µs/request", p.name, b.Requests,
				b.Wall.Round(time.Millisecond), b.EnvoyCPU, b.MicrosPerRequest())
		}
	}
	if r.Memory, err = s.Sidecar.Memory(); err != nil {
		r.fail("memory: %v", err)
	}
	if r.BareMemory, err = s.Bare.Memory(); err != nil {
		r.fail("bare memory: %v", err)
	}
	applies(cfg, r, s, mode, pods)
	return r
}

// spread checks that request i was answered by pod i mod len(pods).
func spread(pods []mesh.Pod) func(int, mesh.Echo) error {
	return func(i int, e mesh.Echo) error {
		if want := pods[i%len(pods)].Name; e.Pod != want {
			return fmt.Errorf("stamped for %s, answered by %s", want, e.Pod)
		}
		return nil
	}
}

// idle is an Envoy's CPU ms per second over 3 s at rest.
func idle(e *mesh.Envoy) float64 {
	c0, err0 := mesh.ProcessCPU(e.Pid())
	time.Sleep(3 * time.Second)
	c1, err1 := mesh.ProcessCPU(e.Pid())
	if err0 != nil || err1 != nil {
		return 0
	}
	return float64((c1 - c0).Microseconds()) / 3000
}

// applies times cfg.Changes table changes, each giving all the weight to
// a pod that had none; the first change (from even weights) is not timed.
func applies(cfg Config, r *Run, s *mesh.Stack, mode string, pods []mesh.Pod) {
	prev := 0
	err := mesh.PutOperatorWeights(s.World.WeightServer.Addr(), mesh.ScaleService, map[string]float64{pods[prev].Name: 1})
	if err == nil {
		err = mesh.WaitSplit(s.SidecarClient(mesh.ScaleService), map[string]float64{pods[prev].Name: 1}, mode, s.World,
			30*time.Second)
	}
	if err != nil {
		r.fail("first table change: %v", err)
		return
	}
	for k := 0; k < cfg.Changes; k++ {
		next := (prev + 1 + 37*k) % len(pods)
		if next == prev {
			next = (next + 1) % len(pods)
		}
		// A spacing that is not a multiple of the poll period, so the
		// changes land at every phase of the filter's poll.
		time.Sleep(700*time.Millisecond + time.Duration(rand.Int64N(int64(time.Second))))
		a, err := mesh.ApplyChange(s, mode, pods[next], 30*time.Second)
		if err != nil {
			r.fail("table change %d: %v", k, err)
			return
		}
		r.Applies = append(r.Applies, a)
		log.Printf("table change to %s: served after %s, followed after %s", a.Target,
			a.Served.Round(time.Millisecond), a.Followed.Round(time.Millisecond))
		prev = next
	}
}
