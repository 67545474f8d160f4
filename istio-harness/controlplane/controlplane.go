// Package controlplane runs Istio's own control plane (istio.io/istio
// pilot/test/xds: the config generation of istiod, in process, over fake
// Kubernetes and in-memory Istio config) serving ADS on a real TCP socket,
// so that real Envoys bootstrap from it.
package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/monitoring"
)

// Options is what the control plane serves.
type Options struct {
	// Config is Istio configuration (a YAML stream: VirtualService,
	// DestinationRule, Gateway, WasmPlugin, ...), as committed.
	Config string
	// Kube is the Kubernetes objects (a YAML stream: Services, Pods,
	// EndpointSlices, Namespaces) of the test world.
	Kube string
	// ADSListen is the address ADS is served on (e.g. 127.0.0.1:0).
	ADSListen string
	// HTTPListen is the address of /metrics and istiod's /debug/ pages.
	HTTPListen string
	// PersistentSession turns on PILOT_ENABLE_PERSISTENT_SESSION_FILTER.
	PersistentSession bool
}

// ControlPlane is a running in-process istiod.
type ControlPlane struct {
	// ADSAddr is where Envoys connect (gRPC, plaintext).
	ADSAddr string
	// HTTPAddr serves /metrics (Istio's own metrics) and /debug/ pages.
	HTTPAddr string
	failer   *failer
	server   *xds.FakeDiscoveryServer
	http     *http.Server
}

// Start builds the control plane from opts and serves until Close.
func Start(opts Options) (*ControlPlane, error) {
	if opts.ADSListen == "" || opts.HTTPListen == "" {
		return nil, errors.New("controlplane: ADSListen and HTTPListen are required")
	}
	metrics, err := monitoring.RegisterPrometheusExporter(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("controlplane: metrics exporter: %w", err)
	}
	ads, err := net.Listen("tcp", opts.ADSListen)
	if err != nil {
		return nil, fmt.Errorf("controlplane: listen ADS %s: %w", opts.ADSListen, err)
	}
	web, err := net.Listen("tcp", opts.HTTPListen)
	if err != nil {
		_ = ads.Close()
		return nil, fmt.Errorf("controlplane: listen HTTP %s: %w", opts.HTTPListen, err)
	}
	applyFeatures(opts.PersistentSession)
	f := &failer{}
	fake := xds.NewFakeDiscoveryServer(f, xds.FakeOptions{
		ConfigString:           opts.Config,
		KubernetesObjectString: opts.Kube,
		MeshConfig:             meshConfig(),
		ListenerBuilder:        func() (net.Listener, error) { return ads, nil },
		// istiod's own default debounce, so pushes batch as in a cluster
		DebounceTime: 100 * time.Millisecond,
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.Handle("/debug/", fake.DiscoveryDebug)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(web) }()
	return &ControlPlane{
		ADSAddr:  ads.Addr().String(),
		HTTPAddr: web.Addr().String(),
		failer:   f,
		server:   fake,
		http:     srv,
	}, nil
}

// Close stops serving and releases everything Start made.
func (c *ControlPlane) Close() {
	_ = c.http.Close()
	c.failer.close()
}
