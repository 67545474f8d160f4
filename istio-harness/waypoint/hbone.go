package waypoint

import (
	"fmt"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
	"istio.io/istio/pkg/hbone"
)

// Client calls a service through the waypoint as ztunnel does for an
// ambient client: every connection is an HBONE tunnel (mTLS with the
// client's workload certificate, HTTP/2 CONNECT to the waypoint pod's
// 15008, `:authority` the service's VIP:port), carrying plain HTTP/1.1.
// The dialer is Istio's own (pkg/hbone).
func (s *Stack) Client(service string) (*mesh.Client, error) {
	p := s.PodsOf(service)[0]
	vip, ok := s.VIPs[service]
	if !ok {
		return nil, fmt.Errorf("no VIP for %s", service)
	}
	own, err := s.CA.Issue(SpiffeID("hotel", "frontend"))
	if err != nil {
		return nil, err
	}
	tlsCfg, err := s.CA.ClientTLS(own, SpiffeID(s.Pod.Namespace, "waypoint"))
	if err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	d := hbone.NewDialer(hbone.Config{
		ProxyAddress: fmt.Sprintf("%s:%d", s.Pod.IP, HBONEPort),
		TLS:          tlsCfg,
		Timeout:      &timeout,
	})
	return mesh.NewClientVia(fmt.Sprintf("%s:%d", vip, p.Port), fmt.Sprintf("%s:%d", p.FQDN(), p.Port), d.DialContext), nil
}
