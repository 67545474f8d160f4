// Package waypoint runs an ambient waypoint on Istio's generation: the
// in-process istiod (ambient on) configures a real upstream Envoy as the
// waypoint of namespace hotel, the harness plays istio-agent's SDS (a CA and
// the waypoint's workload certificate) and the test client plays ztunnel
// (HBONE: mTLS HTTP/2 CONNECT to the waypoint's 15008, addressed to the
// service VIP). See docs/istio-harness.md.
package waypoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// Options choose the waypoint world.
type Options struct {
	// Istiod is the mplb-istiod binary; Dir holds configs and logs.
	Istiod, Dir string
	// TableTTL is the weight server's --table-ttl.
	TableTTL time.Duration
	// AmbientPods enrols the pods of WaypointServices in ambient (the
	// ambient.istio.io/redirection annotation istio-cni sets): Istio then
	// sends the waypoint's requests to them over HBONE, which Tunnels
	// terminate in ztunnel's place.
	AmbientPods bool
	// Mode is the filter's and render-istio's mode: "override" (the
	// default when empty), "subset" or "session" (session also runs istiod
	// with PILOT_ENABLE_PERSISTENT_SESSION_FILTER, as envoyfilter/README.md
	// asks).
	Mode string
}

// Stack is a running waypoint world: echo pods, the weight server, istiod
// (ambient), the SDS server and the waypoint Envoy.
type Stack struct {
	mesh.World
	Repo mesh.Repo
	// Pod is the waypoint's pod (its address carries the HBONE listener).
	Pod mesh.Pod
	// VIPs are the Services' cluster IPs, by short name.
	VIPs         map[string]string
	Echo         *mesh.PodServers
	WeightServer *mesh.Process
	Istiod       *mesh.Process
	IstiodHTTP   string
	ADS          string
	CA           *CA
	SDS          *SDS
	Waypoint     *mesh.Envoy
	// Tunnels are the pods' HBONE servers (Options.AmbientPods).
	Tunnels *Tunnels
	// Config and Kube are what the control plane was given.
	Config, Kube string
}

// HBONEPort is where a waypoint terminates HBONE (Istio's
// model.HBoneInboundListenPort; Istio binds it to the wildcard).
const HBONEPort = 15008

// WaypointPod is the waypoint Deployment's pod, as Istio's gateway
// controller labels it.
func WaypointPod() mesh.Pod {
	return mesh.Pod{
		Name: "waypoint-6f9c7d8b4-wp001", Service: "waypoint", Namespace: "hotel", IP: Subnet + "70", Port: HBONEPort,
		Labels: map[string]string{
			"gateway.networking.k8s.io/gateway-name": "waypoint",
			"gateway.istio.io/managed":               "istio.io-mesh-controller",
			"service.istio.io/canonical-name":        "waypoint",
		},
	}
}

// Subnet is where the waypoint world's pods live: the mesh world's layout
// (mesh.NewWorld) moved from 127.0.0.x to 127.0.2.x, so that `go test
// ./...`, which runs the mesh and waypoint packages at the same time, does
// not bind the same addresses twice.
const Subnet = "127.0.2."

func relocate(w mesh.World) mesh.World {
	move := func(p mesh.Pod) mesh.Pod {
		p.IP = Subnet + strings.TrimPrefix(p.IP, "127.0.0.")
		return p
	}
	for i := range w.Pods {
		w.Pods[i] = move(w.Pods[i])
	}
	for i := range w.Ghosts {
		w.Ghosts[i] = move(w.Ghosts[i])
	}
	w.WeightServer, w.Gateway = move(w.WeightServer), move(w.Gateway)
	return w
}

// clusterIPs are what the API server would allocate to the Services.
var clusterIPs = map[string]string{
	"frontend": "10.96.0.21", "search": "10.96.0.22", "geo": "10.96.0.23", "profile": "10.96.0.24",
	"rate": "10.96.0.25", "reservation": "10.96.0.26", "recommendation": "10.96.0.27", "user": "10.96.0.28",
	"weight-server": "10.96.0.50", "istio-ingressgateway": "10.96.0.60", "waypoint": "10.96.0.70",
}

// Close stops everything, last started first.
func (s *Stack) Close() {
	if s.Waypoint != nil {
		s.Waypoint.Stop()
	}
	if s.SDS != nil {
		s.SDS.Close()
	}
	if s.Tunnels != nil {
		s.Tunnels.Close()
	}
	for _, p := range []*mesh.Process{s.Istiod, s.WeightServer} {
		if p != nil {
			p.Stop()
		}
	}
	if s.Echo != nil {
		s.Echo.Close()
	}
}

// Logs are the tails of every process's log.
func (s *Stack) Logs(lines int) string {
	var b strings.Builder
	for _, p := range []*mesh.Process{s.WeightServer, s.Istiod} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.Name, p.Log, p.Tail(lines))
		}
	}
	if s.Waypoint != nil {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", s.Waypoint.Name, s.Waypoint.Log, s.Waypoint.Tail(lines))
	}
	return b.String()
}

// Start brings the waypoint world up; on error everything started stops.
func Start(opts Options) (s *Stack, err error) {
	repo, err := mesh.FindRepo()
	if err != nil {
		return nil, err
	}
	w := mesh.NewWorld(0)
	w.Ghosts = []mesh.Pod{mesh.GhostPod()}
	w = relocate(w)
	s = &Stack{World: w, Repo: repo, Pod: WaypointPod(), VIPs: clusterIPs}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.Logs(30))
			s.Close()
			s = nil
		}
	}()
	envoyBin, err := repo.Envoy()
	if err != nil {
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
	if s.Echo, err = mesh.StartPods(w.Pods); err != nil {
		return s, err
	}
	topo := filepath.Join(opts.Dir, "topology.yaml")
	if err = os.WriteFile(topo, []byte(w.Topology()), 0o644); err != nil {
		return s, err
	}
	state := filepath.Join(opts.Dir, "ws-state")
	if err = os.MkdirAll(state, 0o755); err != nil {
		return s, err
	}
	if s.WeightServer, err = mesh.StartProcess(opts.Dir, "weight-server", wsBin, []string{"RUST_LOG=info"},
		mesh.WeightServerArgs(w.WeightServer.Addr(), topo, state, opts.TableTTL)...); err != nil {
		return s, err
	}
	if err = mesh.WaitTCP(w.WeightServer.Addr(), 20*time.Second); err != nil {
		return s, err
	}
	if opts.Mode == "" {
		opts.Mode = "override"
	}
	if s.Config, s.Kube, err = s.controlPlaneInput(topo, wasm, opts.Mode, opts.AmbientPods); err != nil {
		return s, err
	}
	cfgFile, kubeFile := filepath.Join(opts.Dir, "istio-config.yaml"), filepath.Join(opts.Dir, "kube.yaml")
	if err = os.WriteFile(cfgFile, []byte(s.Config), 0o644); err != nil {
		return s, err
	}
	if err = os.WriteFile(kubeFile, []byte(s.Kube), 0o644); err != nil {
		return s, err
	}
	// PILOT_ENABLE_AMBIENT in istiod's environment, as Istio's ambient
	// profile sets it: every ambient default follows it at start.
	args := []string{"--config", cfgFile, "--kube", kubeFile, "--ads", "127.0.0.1:0", "--http", "127.0.0.1:0"}
	if opts.Mode == "session" {
		args = append(args, "--persistent-session")
	}
	if s.Istiod, err = mesh.StartProcess(opts.Dir, "istiod", opts.Istiod, []string{"PILOT_ENABLE_AMBIENT=true"}, args...); err != nil {
		return s, err
	}
	ready, err := s.Istiod.WaitLogLine("ready ", 120*time.Second)
	if err != nil {
		return s, err
	}
	if _, err = fmt.Sscanf(ready, "ready ads=%s http=%s", &s.ADS, &s.IstiodHTTP); err != nil {
		return s, fmt.Errorf("istiod ready line %q: %w", ready, err)
	}
	if s.CA, err = NewCA(); err != nil {
		return s, err
	}
	if opts.AmbientPods {
		var enrolled []mesh.Pod
		for _, svc := range WaypointServices {
			enrolled = append(enrolled, w.PodsOf(svc)...)
		}
		if s.Tunnels, err = StartTunnels(enrolled, s.CA); err != nil {
			return s, err
		}
	}
	cert, err := s.CA.Issue(SpiffeID(s.Pod.Namespace, "waypoint"))
	if err != nil {
		return s, err
	}
	sock := filepath.Join(opts.Dir, "sds.sock")
	if s.SDS, err = StartSDS(sock, s.CA, cert); err != nil {
		return s, err
	}
	boot, err := Bootstrap(s.Pod, s.ADS, sock)
	if err != nil {
		return s, err
	}
	s.Waypoint, err = mesh.StartEnvoy(opts.Dir, "waypoint", envoyBin, boot, []string{"ISTIO_META_WORKLOAD_NAME=waypoint"})
	return s, err
}
