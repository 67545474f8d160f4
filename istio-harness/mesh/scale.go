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

// StartSidecar starts the sidecar Envoy of the world's frontend-0 (the
// filter's sidecar, as Start does), stopping any running sidecar first:
// both bind the same outbound ports.
func (s *Stack) StartSidecar() error {
	return s.startSidecar(s.PodsOf("frontend")[0], "frontend", "sidecar")
}

// StartBareSidecar replaces the running sidecar with the bench client's
// (BenchClientPod): the same outbound listeners, routes and clusters from
// Istio, without the hotel WasmPlugin.
func (s *Stack) StartBareSidecar() error {
	return s.startSidecar(BenchClientPod(), "bench", "sidecar-bare")
}

func (s *Stack) startSidecar(p Pod, workload, name string) error {
	if s.Sidecar != nil {
		s.Sidecar.Stop()
		s.Sidecar = nil
	}
	boot, err := Bootstrap(Sidecar, p, workload, s.ADS)
	if err != nil {
		return err
	}
	e, err := StartEnvoy(s.dir, name, s.envoyBin, boot, []string{"ISTIO_META_WORKLOAD_NAME=" + workload})
	if err != nil {
		return err
	}
	s.Sidecar = e
	return nil
}

// WaitListener waits until the sidecar's outbound listener for the scale
// service answers 200 to a request with the given headers.
func (s *Stack) WaitListener(headers map[string]string, timeout time.Duration) error {
	c := s.SidecarClient(ScaleService)
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
	return fmt.Errorf("%s: no 200 within %s; last: %s", s.Sidecar.Name, timeout, last)
}
