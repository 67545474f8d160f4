package mesh

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options choose the world a Stack runs.
type Options struct {
	// Mode is the filter's and render-istio's mode: "subset", "session" or "override".
	Mode string
	// Ghost adds GhostPod to the weight server's topology only.
	Ghost bool
	// Istiod is the mplb-istiod binary.
	Istiod string
	// Dir holds configs and logs.
	Dir string
	// TableTTL is the weight server's --table-ttl.
	TableTTL time.Duration
	// MutateRouting, when set, rewrites render-istio's output before the
	// control plane reads it (the tests use it to break routing on purpose).
	MutateRouting func(string) string
	// Scale, when above 0, runs the scale world (NewScaleWorld): profile
	// with Scale pods, and the bench client's Pod.
	Scale int
	// NoGateway starts no ingress gateway Envoy.
	NoGateway bool
}

// Stack is a running world: echo pods, the weight server, Istio's control
// plane on the committed manifests, an ingress gateway Envoy and a sidecar
// Envoy (of pod frontend-0), both running the built filter through ECDS.
type Stack struct {
	World
	Repo Repo
	// Echo are the pods' echo servers.
	Echo *PodServers
	// WeightServer is the weight server process.
	WeightServer *Process
	// Istiod is the control plane process; IstiodHTTP its metrics address.
	Istiod     *Process
	IstiodHTTP string
	// Gateway and Sidecar are the Envoys; Bare is the scale world's bench
	// client sidecar (StartBareSidecar), if started.
	Gateway, Sidecar, Bare *Envoy
	// Config and Kube are what the control plane was given.
	Config, Kube string
	// ADS is the control plane's ADS address.
	ADS string
	// dir and envoyBin are where the Envoys keep their files and what runs.
	dir, envoyBin string
}

// Close stops everything, last started first.
func (s *Stack) Close() {
	for _, e := range []*Envoy{s.Bare, s.Sidecar, s.Gateway} {
		if e != nil {
			e.Stop()
		}
	}
	if s.Istiod != nil {
		s.Istiod.Stop()
	}
	if s.WeightServer != nil {
		s.WeightServer.Stop()
	}
	if s.Echo != nil {
		s.Echo.Close()
	}
}

// Logs are the tails of every process's log, for a failure message.
func (s *Stack) Logs(lines int) string {
	var b strings.Builder
	for _, p := range []*Process{s.WeightServer, s.Istiod} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.Name, p.Log, p.Tail(lines))
		}
	}
	for _, e := range []*Envoy{s.Gateway, s.Sidecar, s.Bare} {
		if e != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", e.Name, e.Log, e.Tail(lines))
		}
	}
	return b.String()
}

// SidecarClient calls a hotel service through the sidecar's outbound
// listener (interception NONE: 127.0.0.1:<service port>).
func (s *Stack) SidecarClient(service string) *Client {
	p := s.PodsOf(service)[0]
	return NewClient(fmt.Sprintf("127.0.0.1:%d", p.Port), fmt.Sprintf("%s:%d", p.FQDN(), p.Port))
}

// GatewayClient calls a hotel service through the ingress gateway.
func (s *Stack) GatewayClient(service string) *Client {
	p := s.PodsOf(service)[0]
	return NewClient(fmt.Sprintf("%s:%d", s.World.Gateway.IP, s.GatewayPort), p.FQDN())
}

// Start brings the world up; on error everything started is stopped.
func Start(opts Options) (s *Stack, err error) {
	repo, err := FindRepo()
	if err != nil {
		return nil, err
	}
	gwPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s = &Stack{World: NewWorld(gwPort), Repo: repo, dir: opts.Dir}
	if opts.Scale > 0 {
		s.World = NewScaleWorld(gwPort, opts.Scale)
	}
	if opts.Ghost {
		s.World.Ghosts = []Pod{GhostPod()}
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.Logs(30))
			s.Close()
			s = nil
		}
	}()
	if s.envoyBin, err = repo.Envoy(); err != nil {
		return s, err
	}
	wasm, err := repo.FilterWasm()
	if err != nil {
		return s, err
	}
	wsBin, err := repo.WeightServer()
	if err != nil {
		return s, err
	}
	if s.Echo, err = StartPods(s.World.Pods); err != nil {
		return s, err
	}
	topo := filepath.Join(opts.Dir, "topology.yaml")
	if err = os.WriteFile(topo, []byte(s.Topology()), 0o644); err != nil {
		return s, err
	}
	state := filepath.Join(opts.Dir, "ws-state")
	if err = os.MkdirAll(state, 0o755); err != nil {
		return s, err
	}
	s.WeightServer, err = StartProcess(opts.Dir, "weight-server", wsBin, []string{"RUST_LOG=info"},
		WeightServerArgs(s.World.WeightServer.Addr(), topo, state, opts.TableTTL)...)
	if err != nil {
		return s, err
	}
	if err = WaitTCP(s.World.WeightServer.Addr(), 20*time.Second); err != nil {
		return s, err
	}
	if s.Config, s.Kube, err = s.controlPlaneInput(opts, topo, wasm); err != nil {
		return s, err
	}
	cfgFile, kubeFile := filepath.Join(opts.Dir, "istio-config.yaml"), filepath.Join(opts.Dir, "kube.yaml")
	if err = os.WriteFile(cfgFile, []byte(s.Config), 0o644); err != nil {
		return s, err
	}
	if err = os.WriteFile(kubeFile, []byte(s.Kube), 0o644); err != nil {
		return s, err
	}
	args := []string{"--config", cfgFile, "--kube", kubeFile, "--ads", "127.0.0.1:0", "--http", "127.0.0.1:0"}
	if opts.Mode == "session" {
		args = append(args, "--persistent-session")
	}
	if s.Istiod, err = StartProcess(opts.Dir, "istiod", opts.Istiod, nil, args...); err != nil {
		return s, err
	}
	ready, err := s.Istiod.WaitLogLine("ready ", 120*time.Second)
	if err != nil {
		return s, err
	}
	if _, err = fmt.Sscanf(ready, "ready ads=%s http=%s", &s.ADS, &s.IstiodHTTP); err != nil {
		return s, fmt.Errorf("istiod ready line %q: %w", ready, err)
	}
	if !opts.NoGateway {
		gwBoot, berr := Bootstrap(Router, s.World.Gateway, "istio-ingressgateway", s.ADS)
		if berr != nil {
			return s, berr
		}
		if s.Gateway, err = StartEnvoy(opts.Dir, "gateway", s.envoyBin, gwBoot,
			[]string{"ISTIO_META_WORKLOAD_NAME=istio-ingressgateway"}); err != nil {
			return s, err
		}
	}
	front := s.PodsOf("frontend")[0]
	scBoot, err := Bootstrap(Sidecar, front, "frontend", s.ADS)
	if err != nil {
		return s, err
	}
	if s.Sidecar, err = StartEnvoy(opts.Dir, "sidecar", s.envoyBin, scBoot,
		[]string{"ISTIO_META_WORKLOAD_NAME=frontend"}); err != nil {
		return s, err
	}
	return s, nil
}

// controlPlaneInput is the Istio config (committed manifests, the filter's
// WasmPlugins pointed at the built module, render-istio's output) and the
// Kubernetes objects (committed Namespaces and Services, the test pods).
func (s *Stack) controlPlaneInput(opts Options, topo, wasm string) (config, kube string, err error) {
	r := s.Repo
	read := func(rel string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = r.Manifest(rel)
		return out
	}
	ws, gwPlugin, scPlugin, gateway := read("weight-server.yaml"), read("wasmplugin-gateway.yaml"),
		read("hotel/wasmplugin-sidecar.yaml"), read("hotel/hotel-gateway.yaml")
	ns, app := read("namespace.yaml"), read("hotel/hotel-app.yaml")
	// Session and override modes route no header: the ingress without subsets.
	plain := read("override/hotel-ingress.yaml")
	if err != nil {
		return "", "", err
	}
	if gateway, err = BindGateways(gateway, s.World.Gateway.IP); err != nil {
		return "", "", err
	}
	if plain, err = BindGateways(plain, s.World.Gateway.IP); err != nil {
		return "", "", err
	}
	set := map[string]string{"mode": opts.Mode}
	if gwPlugin, err = LocalWasmPlugin(gwPlugin, wasm, set); err != nil {
		return "", "", err
	}
	if scPlugin, err = LocalWasmPlugin(scPlugin, wasm, set); err != nil {
		return "", "", err
	}
	rendered, err := r.RenderIstio(topo, opts.Mode)
	if err != nil {
		return "", "", err
	}
	if opts.MutateRouting != nil {
		rendered = opts.MutateRouting(rendered)
	}
	committed, err := SplitYAML(ns + "\n---\n" + ws + "\n---\n" + app)
	if err != nil {
		return "", "", err
	}
	objects := KeepKinds(committed, "Namespace", "Service")
	objects = append(objects, doc{"apiVersion": "v1", "kind": "Namespace", "metadata": doc{"name": "istio-system"}})
	for _, c := range s.World.Clients {
		objects = append(objects, doc{"apiVersion": "v1", "kind": "Namespace", "metadata": doc{"name": c.Namespace}})
	}
	parts := []string{ws, gwPlugin, scPlugin}
	if len(s.World.Clients) > 0 {
		parts = append(parts, BenchSidecarResource())
	}
	switch opts.Mode {
	case "subset":
		parts = append(parts, gateway, rendered)
	case "session":
		patches, perr := SplitYAML(rendered)
		if perr != nil {
			return "", "", perr
		}
		if err = ApplyLabelPatches(objects, patches); err != nil {
			return "", "", err
		}
		parts = append(parts, plain)
	case "override":
		parts = append(parts, plain, rendered)
	default:
		return "", "", fmt.Errorf("mode %q is not subset, session or override", opts.Mode)
	}
	kube, err = s.KubeObjects(objects)
	return strings.Join(parts, "\n---\n"), kube, err
}
