package waypoint

// NoPeerMetadata is the harness's one change to Istio's waypoint
// generation, made with Istio's own API (an EnvoyFilter istiod applies):
// Istio puts the peer-metadata HTTP filter
// (type.googleapis.com/io.istio.http.peer_metadata.Config, built only into
// Istio's proxy) on the waypoint's CONNECT-terminating chain
// (`waypoint_downstream_peer_metadata`) and on every service chain
// (`waypoint_upstream_peer_metadata`), unconditionally: no istiod flag
// turns it off (PILOT_ENABLE_METADATA_EXCHANGE does not reach it).
// Upstream Envoy rejects both listeners (connect_terminate, main_internal)
// for it. It only feeds telemetry (peer labels for metrics), which the
// harness has none of.
const NoPeerMetadata = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: harness-no-peer-metadata
  namespace: hotel
spec:
  targetRefs:
    - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: envoy.filters.network.http_connection_manager
              subFilter: {name: waypoint_downstream_peer_metadata}
      patch: {operation: REMOVE}
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: envoy.filters.network.http_connection_manager
              subFilter: {name: waypoint_upstream_peer_metadata}
      patch: {operation: REMOVE}
`

// WeightServerReference is the committed manifest that gives the waypoint
// the weight server's cluster (envoyfilter/override/weight-server-waypoint.yaml):
// a waypoint gets outbound clusters only for services its routes name (or
// that an EnvoyFilter selecting it names in the
// `envoyfilter.istio.io/referenced-services` annotation,
// pilot/pkg/model/envoyfilter.go), so without it the waypoint has no
// `outbound|8080||weight-server.mplb-system.svc.cluster.local` and the
// filter cannot poll (TestWaypointNeedsTheWeightServerReference).
const WeightServerReference = "override/weight-server-waypoint.yaml"

// ProxyVersion is the Istio version the waypoint announces (the sidecar
// and the gateway announce mesh.IstioVersion, 1.32.0). For proxies from
// 1.29.2 on, Istio's CONNECT-terminating chain stores the tunnel's
// authority and peer identities in filter state with the object factory
// `istio.hashable_string`, built only into Istio's proxy (istio/proxy
// #6905, istio/istio #59513); upstream Envoy rejects connect_terminate with
// "'io.istio.connect_authority' does not have an object factory". For older
// proxies Istio still generates the same filter with Envoy's own
// `envoy.string` (istio/istio #60505), and that version gate is the only
// one a waypoint's generation has here (tracing is off). What 1.29.2
// fixed: `envoy.string` state is not hashed into upstream connection-pool
// keys, so CONNECT streams of different authorities may share one pooled
// connection to main_internal (istio/istio #58630); the tests keep one
// client (one HBONE connection) per destination service.
const ProxyVersion = "1.29.1"

// switchObjects are the Istio objects the harness adds to the waypoint
// world beyond the committed manifests.
func switchObjects() []string { return []string{NoPeerMetadata} }
