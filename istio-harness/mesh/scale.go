package mesh

import (
	"fmt"
	"time"
)

// ScaleService is the service the scale world grows: profile (port 8081,
// a StatefulSet of envoyfilter/hotel/hotel-app.yaml), whose N pods replace
// the hotel world's three. frontend (the sidecar's own pod) and geo keep
// theirs, so whatever grows with N is profile's.
const ScaleService = "profile"

// scaleAddr is the loopback address of pod i of the scale world:
// 127.1.<i/200>.<i%200+1>, clear of the hotel world's 127.0.0.x.
func scaleAddr(i int) string { return fmt.Sprintf("127.1.%d.%d", i/200, i%200+1) }

// NewScaleWorld is the hotel world with profile grown to n pods (profile-0
// .. profile-<n-1>, StatefulSet pods as the hotel world's, on 127.1.x.y).
// It also has the bench client: a pod outside namespace hotel, whose
// sidecar gets the same routing but not the hotel WasmPlugin.
func NewScaleWorld(gatewayPort, n int) World {
	base := NewWorld(gatewayPort)
	w := base
	w.Pods = nil
	for _, p := range base.Pods {
		if p.Service != ScaleService {
			w.Pods = append(w.Pods, p)
		}
	}
	for i := 0; i < n; i++ {
		w.Pods = append(w.Pods, hotelPod(ScaleService, i, scaleAddr(i), 8081))
	}
	w.Clients = []Pod{BenchClientPod()}
	return w
}

// BenchClientNamespace is the bench client's namespace: not hotel, so the
// hotel WasmPlugin (namespace-wide, no selector) does not reach its sidecar.
const BenchClientNamespace = "mplb-bench"

// BenchClientPod is the pod whose sidecar is the bench's no-filter baseline.
// It backs no Service (Kubernetes has only its Pod).
func BenchClientPod() Pod {
	return Pod{
		Name: "bench-0", Service: "bench", Namespace: BenchClientNamespace,
		IP: "127.0.0.70", Port: 9000, Labels: map[string]string{"app": "bench"},
	}
}

// BenchBind is the address the bench client's sidecar binds its outbound
// listener for the scale service to (its Sidecar resource's egress `bind`),
// so it runs beside the filter's sidecar, whose listeners take 127.0.0.1.
const BenchBind = "127.0.0.2"

// BenchSidecarResource is the bench client's Istio Sidecar: one egress
// listener, the scale service's port bound to BenchBind, every host.
func BenchSidecarResource() string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: bench
  namespace: %s
spec:
  workloadSelector:
    labels:
      app: bench
  egress:
    - port:
        number: 8081
        protocol: GRPC
        name: grpc
      bind: %s
      captureMode: NONE
      hosts: ["*/*"]
`, BenchClientNamespace, BenchBind)
}

// StartBareSidecar starts the bench client's sidecar (BenchClientPod) as
// s.Bare: Istio's routes and clusters for the scale service without the
// hotel WasmPlugin, its listener on BenchBind.
func (s *Stack) StartBareSidecar() error {
	boot, err := Bootstrap(Sidecar, BenchClientPod(), "bench", s.ADS)
	if err != nil {
		return err
	}
	s.Bare, err = StartEnvoy(s.dir, "sidecar-bare", s.envoyBin, boot, []string{"ISTIO_META_WORKLOAD_NAME=bench"})
	return err
}

// Target is a listener of a sidecar for the scale service.
type Target struct {
	// Envoy is the sidecar whose CPU is measured.
	Envoy *Envoy
	// Listener is host:port; Authority the service's host:port.
	Listener, Authority string
}

// FilterTarget is the filter's sidecar (frontend-0's): 127.0.0.1:8081.
func (s *Stack) FilterTarget() Target {
	p := s.PodsOf(ScaleService)[0]
	return Target{Envoy: s.Sidecar, Listener: fmt.Sprintf("127.0.0.1:%d", p.Port),
		Authority: fmt.Sprintf("%s:%d", p.FQDN(), p.Port)}
}

// BareTarget is the bench client's sidecar, without the filter.
func (s *Stack) BareTarget() Target {
	p := s.PodsOf(ScaleService)[0]
	return Target{Envoy: s.Bare, Listener: fmt.Sprintf("%s:%d", BenchBind, p.Port),
		Authority: fmt.Sprintf("%s:%d", p.FQDN(), p.Port)}
}

// WaitListener waits until the target answers 200 to a request with the
// given headers.
func WaitListener(t Target, headers map[string]string, timeout time.Duration) error {
	c := NewClient(t.Listener, t.Authority)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		a, err := c.Get(headers)
		if err == nil && a.Status == 200 {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("status %d", a.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s (%s): no 200 within %s; last: %s", t.Envoy.Name, t.Listener, timeout, last)
}
