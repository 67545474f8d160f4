package controlplane

import (
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/features"
	"istio.io/istio/pkg/config/mesh"
)

// Switch is one setting that differs from istiod's defaults, with the reason.
type Switch struct {
	// Name is the istiod environment variable or mesh config field.
	Name string
	// Value is what the harness sets.
	Value string
	// Why says why upstream Envoy needs it.
	Why string
}

// Switches lists every setting the harness changes, in the order applied.
// docs/istio-harness.md repeats this list; keep both in step.
var Switches = []Switch{
	{"PILOT_ENABLE_METADATA_EXCHANGE", "false",
		"istio.metadata_exchange (HTTP and TCP) is built only into Istio's proxy; upstream Envoy rejects a listener that names it"},
	{"PILOT_ENABLE_ALPN_FILTER", "false",
		"istio.alpn is built only into Istio's proxy; upstream Envoy rejects a listener that names it"},
	{"meshConfig.enableAutoMtls", "false",
		"no istio-agent, so no SDS certificates: auto mTLS would add ISTIO_MUTUAL transport sockets Envoy cannot fill"},
	{"meshConfig.enableTracing", "false",
		"no tracing backend in the test world (Istio's default has no provider either; this keeps it explicit)"},
	{"meshConfig.defaultProviders.metrics", "(none)",
		"no istio.stats filter: it is built only into Istio's proxy (the default mesh config already names no provider)"},
	{"PILOT_ENABLE_PERSISTENT_SESSION_FILTER", "true in session mode only",
		"what the project asks operators to set on istiod for session mode (envoyfilter/README.md)"},
	{"PILOT_ENABLE_AMBIENT", "true in the waypoint world only (istiod's environment)",
		"what Istio's ambient profile sets on istiod; the ambient defaults (waypoint controllers, HBONE, ambient status) follow it at start"},
	{"waypoint peer-metadata filters", "removed by an EnvoyFilter (waypoint world, waypoint.NoPeerMetadata)",
		"io.istio.http.peer_metadata is built only into Istio's proxy and no istiod flag turns it off on a waypoint"},
	{"waypoint ISTIO_VERSION", "1.29.1 (waypoint world, waypoint.ProxyVersion)",
		"from 1.29.2 Istio's connect_authority filter names the object factory istio.hashable_string, built only into Istio's proxy"},
}

// applyFeatures sets the feature flags before the server is built. istiod
// reads these from its environment at start; the harness sets the same
// package variables directly so the process environment does not matter.
func applyFeatures(persistentSession bool) {
	features.MetadataExchange = false
	features.ALPNFilter = false
	features.EnablePersistentSessionFilter.Store(persistentSession)
}

// meshConfig is istiod's default mesh config with the switches above.
func meshConfig() *meshconfig.MeshConfig {
	m := mesh.DefaultMeshConfig()
	m.EnableAutoMtls = wrapperspb.Bool(false)
	m.EnableTracing = false
	m.DefaultProviders = &meshconfig.MeshConfig_DefaultProviders{}
	return m
}
