package waypoint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// CA is the mesh's root of trust (istiod's self-signed CA in a cluster):
// it signs the workload certificates istio-agent would fetch for a proxy.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the root certificate (what istio-agent serves as ROOTCA).
	PEM []byte
}

// NewCA makes a self-signed root.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Workload is a workload certificate and key, PEM-encoded, for a SPIFFE id.
type Workload struct {
	// ID is the SPIFFE id, the certificate's only SAN.
	ID string
	// CertPEM and KeyPEM are the leaf certificate and its key.
	CertPEM, KeyPEM []byte
}

// SpiffeID is the identity Istio gives a service account.
func SpiffeID(namespace, serviceAccount string) string {
	return fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", namespace, serviceAccount)
}

// Issue signs a workload certificate for a SPIFFE id, as istiod's CA does
// for istio-agent's CSR: the id as URI SAN, client and server usage.
func (ca *CA) Issue(id string) (Workload, error) {
	u, err := url.Parse(id)
	if err != nil {
		return Workload{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Workload{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return Workload{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return Workload{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Workload{}, err
	}
	return Workload{
		ID:      id,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ClientTLS is what the test client (in ztunnel's place) presents and
// checks: its own workload certificate, and a server certificate chaining
// to the CA whose SPIFFE id is want.
func (ca *CA) ClientTLS(own Workload, want string) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(own.CertPEM, own.KeyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2"},
		// Istio identities are URI SANs, not host names: verify the chain
		// and the SPIFFE id ourselves, as ztunnel does.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return err
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
				return fmt.Errorf("server identity %v, want %s", leaf.URIs, want)
			}
			return nil
		},
	}, nil
}

// SecretType is the type URL of SDS resources.
const SecretType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

// SDS serves the two secrets istio-agent serves a proxy over SDS: `default`
// (the workload certificate and key) and `ROOTCA` (the trust root), on a
// Unix socket as istio-agent does (the bootstrap's `sds-grpc` cluster).
type SDS struct {
	secrets map[string]*anypb.Any
	server  *grpc.Server
	mu      sync.Mutex
	served  map[string]int
}

// StartSDS serves the workload's secrets on the Unix socket path.
func StartSDS(path string, ca *CA, w Workload) (*SDS, error) {
	inline := func(b []byte) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
	}
	cert, err := anypb.New(&tlsv3.Secret{Name: "default", Type: &tlsv3.Secret_TlsCertificate{
		TlsCertificate: &tlsv3.TlsCertificate{CertificateChain: inline(w.CertPEM), PrivateKey: inline(w.KeyPEM)},
	}})
	if err != nil {
		return nil, err
	}
	root, err := anypb.New(&tlsv3.Secret{Name: "ROOTCA", Type: &tlsv3.Secret_ValidationContext{
		ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(ca.PEM)},
	}})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &SDS{secrets: map[string]*anypb.Any{"default": cert, "ROOTCA": root}, server: grpc.NewServer(), served: map[string]int{}}
	secretv3.RegisterSecretDiscoveryServiceServer(s.server, &sdsService{sds: s})
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// Served is how many times each secret was sent.
func (s *SDS) Served() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.served {
		out[k] = v
	}
	return out
}

// Close stops serving.
func (s *SDS) Close() { s.server.Stop() }

type sdsService struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	sds *SDS
}

// StreamSecrets answers each new set of requested names with those secrets
// (the certificates never rotate in a test); an ACK or NACK (a request
// carrying the last nonce for the same names) gets no answer.
func (h *sdsService) StreamSecrets(stream secretv3.SecretDiscoveryService_StreamSecretsServer) error {
	sent, nonce := "", 0
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		key := fmt.Sprint(req.GetResourceNames())
		if key == sent && req.GetResponseNonce() == strconv.Itoa(nonce) {
			continue
		}
		resp := &discovery.DiscoveryResponse{VersionInfo: "1", TypeUrl: SecretType}
		for _, name := range req.GetResourceNames() {
			sec, ok := h.sds.secrets[name]
			if !ok {
				return fmt.Errorf("no secret %q (istio-agent serves default and ROOTCA)", name)
			}
			resp.Resources = append(resp.Resources, sec)
			h.sds.mu.Lock()
			h.sds.served[name]++
			h.sds.mu.Unlock()
		}
		nonce++
		resp.Nonce = strconv.Itoa(nonce)
		if err := stream.Send(resp); err != nil {
			return err
		}
		sent = key
	}
}
