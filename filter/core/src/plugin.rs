//! One Wasm VM's plugin: a method per proxy-wasm callback the filter
//! exports, called by the shim (`mplb-filter`) with the host. Every decision
//! is made here or below; the shim only forwards.
//!
//! A request costs two callbacks: request headers, where the pod is chosen
//! (and, for a stamped request, a [`Stream`] keyed by its context id is
//! kept), and log, at the end of the stream, where the stream is counted and
//! dropped (with, for a sampled response, its latency and its `:status`
//! from the response headers, none if there was no response). There is no
//! response-headers callback: exporting one would make Envoy call it on
//! every request, and the log callback still sees the response headers.
//!
//! Without `proxy_on_context_create` the filter does not learn which root
//! context a request belongs to, so a VM holds one configuration: the root
//! context configured last serves every request (a configuration update
//! configures a new root context in the same VM; it replaces the old one).

use mplb_wire::PluginConfig;

use crate::host::{Buffer, CallResponse, Host, HttpHost, Level, Map};
use crate::inflight::InFlight;
use crate::stats::{Outcome, parse_status};
use crate::vm::{Stamped, VmFilter};

/// A stamped request in flight: the per-request context, from its request
/// headers to the end of its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    stamped: Stamped,
    /// When its response is observed: the requests it stands for.
    sample: u32,
    started_ns: Option<u64>,
}

impl Stream {
    /// The end of the stream (after its access log): count its outcome.
    /// The status is a value the host must place in the VM: read only for
    /// the sampled responses (all of them with `exact_errors`). Latency is
    /// from its request headers to here (sampled requests).
    pub fn on_log<H: HttpHost>(self, host: &H, vm: &mut VmFilter) {
        let weight = vm.status_weight(self.sample);
        let status = if weight > 0 {
            host.header(Map::Response, ":status")
                .and_then(|v| parse_status(&v))
        } else {
            None
        };
        let latency_us = self
            .started_ns
            .and_then(|start| host.now_ns().map(|now| now.saturating_sub(start) / 1_000));
        let outcome = Outcome {
            weight,
            status,
            latency_us,
        };
        vm.on_done(self.stamped, outcome);
    }
}

/// Everything one VM holds: the configured filter (and its root context id)
/// and the stamped requests in flight.
#[derive(Debug, Default)]
pub struct Plugin {
    root: u32,
    filter: Option<VmFilter>,
    requests: InFlight<Stream>,
}

/// This workload's own service: the config, else the Istio workload name
/// from the environment, else from the node metadata.
fn own_service(host: &dyn Host, cfg: &PluginConfig) -> Option<String> {
    if let Some(s) = &cfg.service {
        return Some(s.clone());
    }
    if let Some(s) = host.env("ISTIO_META_WORKLOAD_NAME")
        && !s.is_empty()
    {
        return Some(s);
    }
    for path in [
        &["xds", "node", "metadata", "WORKLOAD_NAME"][..],
        &["node", "metadata", "WORKLOAD_NAME"][..],
    ] {
        if let Some(v) = host.property(path)
            && let Ok(s) = String::from_utf8(v)
            && !s.is_empty()
            && !s.contains(char::is_whitespace)
        {
            return Some(s);
        }
    }
    None
}

impl Plugin {
    /// Not configured yet, nothing in flight (`const`: the shim's state).
    pub const fn new() -> Self {
        Plugin {
            root: 0,
            filter: None,
            requests: InFlight::new(),
        }
    }

    /// The configured filter, if `root` is the root context it was
    /// configured for.
    fn filter_of(&mut self, root: u32) -> Option<&mut VmFilter> {
        self.filter.as_mut().filter(|_| self.root == root)
    }

    /// The configured filter (for tests and probes).
    pub fn filter(&self) -> Option<&VmFilter> {
        self.filter.as_ref()
    }

    /// Stamped requests in flight.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// `proxy_on_configure`: read and validate the plugin configuration,
    /// start the filter for root context `root`, ask for the tick. False
    /// (the plugin refuses to start) on a bad configuration.
    pub fn configure(&mut self, host: &dyn Host, root: u32) -> bool {
        let raw = host
            .buffer(Buffer::PluginConfiguration, usize::MAX)
            .unwrap_or_default();
        let cfg = match PluginConfig::parse(&raw) {
            Ok(cfg) => cfg,
            Err(e) => {
                // `e` names the field: "field `mode`: ...".
                let msg = format!("mplb: refusing to start: bad configuration: {e}");
                host.log(Level::Error, &msg);
                return false;
            }
        };
        let own = own_service(host, &cfg);
        if own.is_none() {
            host.log(
                Level::Warn,
                "mplb: own service unknown (no `service`, ISTIO_META_WORKLOAD_NAME or node metadata); inbound requests may be stamped",
            );
        }
        let tick_ms = u32::try_from(cfg.tick_ms()).unwrap_or(u32::MAX);
        let mut vm = VmFilter::new(cfg, own, host.random_seed());
        vm.on_configure(host);
        if self.filter.is_some() && self.root != root {
            host.log(
                Level::Info,
                &format!(
                    "mplb: root context {root} configured; it replaces {}",
                    self.root
                ),
            );
        }
        self.root = root;
        self.filter = Some(vm);
        host.set_tick_period_ms(tick_ms)
    }

    /// `proxy_on_tick` of root context `root`.
    pub fn on_tick(&mut self, host: &dyn Host, root: u32) {
        if let Some(vm) = self.filter_of(root) {
            vm.on_tick(host);
        }
    }

    /// `proxy_on_http_call_response`: the answer to call `token`, with
    /// `num_headers` headers (0: no response) and a body of `body_size`.
    pub fn on_http_call_response<H: HttpHost>(
        &mut self,
        host: &H,
        root: u32,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let Some(vm) = self.filter_of(root) else {
            return;
        };
        let status = if num_headers == 0 {
            None
        } else {
            host.header(Map::HttpCallResponse, ":status")
                .and_then(|s| parse_status(&s))
        };
        // Oversized bodies are cut one byte past the limit so parse rejects them.
        let take = body_size.min(mplb_wire::MAX_TABLE_BYTES + 1);
        let body = host
            .buffer(Buffer::HttpCallResponseBody, take)
            .unwrap_or_default();
        vm.on_call_response(host, token, &CallResponse { status, body });
    }

    /// `proxy_on_request_headers` of stream `id`: choose, edit the headers,
    /// and keep a [`Stream`] for a stamped request.
    pub fn on_request_headers<H: HttpHost>(&mut self, host: &H, id: u32) {
        let Plugin {
            filter, requests, ..
        } = self;
        let Some(vm) = filter.as_mut() else {
            return;
        };
        // Expiry is checked against the VM's tick clock: no clock call here.
        let now_ms = vm.clock_ms();
        // Header values as bytes: Envoy passes values that are not UTF-8
        // (obs-text). A host that is not UTF-8 is unknown; an endpoint value
        // that is not UTF-8 names no pod (so it is replaced, or stripped).
        let authority = host.header(Map::Request, ":authority");
        let endpoint = host.header(Map::Request, &vm.config().header);
        let authority = authority
            .as_deref()
            .and_then(|a| std::str::from_utf8(a).ok());
        let endpoint = endpoint
            .as_deref()
            .map(|e| std::str::from_utf8(e).unwrap_or(""));
        let edits = vm.on_request(now_ms, authority, endpoint);
        if let Some(name) = edits.remove {
            host.remove_header(Map::Request, name);
        }
        if let Some((name, value)) = edits.set {
            host.set_header(Map::Request, name, value);
        }
        if let Some(stamped) = edits.stamped {
            let started_ns = if edits.sample > 0 {
                host.now_ns()
            } else {
                None
            };
            requests.insert(
                id,
                Stream {
                    stamped,
                    sample: edits.sample,
                    started_ns,
                },
            );
        }
    }

    /// `proxy_on_log` of stream `id`: the end of the stream.
    pub fn on_log<H: HttpHost>(&mut self, host: &H, id: u32) {
        let Some(stream) = self.requests.remove(id) else {
            return;
        };
        if let Some(vm) = self.filter.as_mut() {
            stream.on_log(host, vm);
        }
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod sample_tests;
#[cfg(test)]
mod tests;
