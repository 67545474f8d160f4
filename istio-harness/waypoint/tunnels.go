package waypoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
	"golang.org/x/sys/unix"
	"istio.io/istio/pkg/hbone"
)

// Tunnels stand for ztunnel on the nodes of ambient pods: HBONE (mTLS,
// HTTP/2 CONNECT) on each pod's address:15008, where a tunnel to
// <pod ip>:<port> is connected to that address. The server is Istio's own
// (pkg/hbone); the certificate is the pods' identity (service account
// default of namespace hotel).
type Tunnels struct {
	servers []*http.Server
	mu      sync.Mutex
	connect map[string]int
}

// StartTunnels serves HBONE for each pod.
func StartTunnels(pods []mesh.Pod, ca *CA) (*Tunnels, error) {
	w, err := ca.Issue(SpiffeID("hotel", "default"))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(w.CertPEM, w.KeyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2"},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no client certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			return err
		},
	}
	t := &Tunnels{connect: map[string]int{}}
	for _, p := range pods {
		// SO_REUSEPORT: Istio binds the waypoint's HBONE listener to
		// 0.0.0.0:15008 (Envoy sets SO_REUSEPORT); on one loopback the
		// pods' tunnels share the port, each on its own address (in a
		// cluster, every pod has its own network namespace).
		lc := net.ListenConfig{Control: reusePort}
		l, err := lc.Listen(context.Background(), "tcp", fmt.Sprintf("%s:%d", p.IP, HBONEPort))
		if err != nil {
			t.Close()
			return nil, err
		}
		srv := hbone.NewServer()
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = cfg
		srv.ReadHeaderTimeout = 5 * time.Second
		inner, name := srv.Handler, p.Name
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.mu.Lock()
			t.connect[name]++
			t.mu.Unlock()
			inner.ServeHTTP(w, r)
		})
		t.servers = append(t.servers, srv)
		go func() { _ = srv.ServeTLS(l, "", "") }()
	}
	return t, nil
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// Connects are the CONNECT requests each pod's tunnel received.
func (t *Tunnels) Connects() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for k, v := range t.connect {
		out[k] = v
	}
	return out
}

// Close stops every tunnel server.
func (t *Tunnels) Close() {
	for _, s := range t.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
}
