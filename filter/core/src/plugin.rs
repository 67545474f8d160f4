//! One Wasm VM's plugin: a method per proxy-wasm callback the filter
//! exports, called by the shim (`mplb-filter`) with the host. Every decision
//! is made here or below; the shim only forwards.
//!
//! A request costs one callback: request headers, where the pod is chosen
//! and stamped (or, at an admitting gateway, the request is shed with a
//! local reply: [`crate::admission`]). Nothing is kept per request, and
//! the module exports no response or log callback, so Envoy makes no other
//! call into the VM for the request (it skips a callback a module does not
//! export).
//!
//! Without `proxy_on_context_create` the filter does not learn which root
//! context a request belongs to, so a VM holds one configuration: the root
//! context configured last serves every request (a configuration update
//! configures a new root context in the same VM; it replaces the old one).

use mplb_wire::PluginConfig;

use crate::admission::{SHED_BODY, SHED_DETAILS, SHED_HEADERS, SHED_STATUS};
use crate::host::{Buffer, CallResponse, Host, HttpHost, Level, Map, parse_status};
use crate::vm::VmFilter;

/// What the request-headers callback tells the host to do with the stream
/// (the proxy-wasm `Action` of that callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Next {
    /// Go on with the request (proxy-wasm `Continue`, 0).
    Continue,
    /// Stop iterating: the filter answered the request with a local reply
    /// (proxy-wasm `Pause`, `StopIteration`, 1).
    Pause,
}

/// Everything one VM holds: the configured filter and its root context id.
#[derive(Debug, Default)]
pub struct Plugin {
    root: u32,
    filter: Option<VmFilter>,
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
    /// Not configured yet (`const`: the shim's state).
    pub const fn new() -> Self {
        Plugin {
            root: 0,
            filter: None,
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
        if !cfg.retired.is_empty() {
            let msg = format!(
                "mplb: ignoring retired configuration keys {:?} (the per-pod proxy stats were removed)",
                cfg.retired
            );
            host.log(Level::Warn, &msg);
        }
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

    /// `proxy_on_request_headers`: shed the request (an admitting proxy),
    /// or choose and edit the headers. [`Next::Pause`] only after a local
    /// reply the host accepted; a refused one lets the request through,
    /// stamped as if admitted (fail-open).
    pub fn on_request_headers<H: HttpHost>(&mut self, host: &H) -> Next {
        let Some(vm) = self.filter.as_mut() else {
            return Next::Continue;
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
        let mut edits = vm.on_request(now_ms, authority, endpoint);
        if edits.shed {
            if host.send_local_response(SHED_STATUS, SHED_DETAILS, SHED_HEADERS, SHED_BODY) {
                return Next::Pause;
            }
            vm.on_shed_refused(host);
            edits = vm.on_request_admitted(now_ms, authority, endpoint);
        }
        // A refused edit leaves the request as it was: Envoy routes it
        // without the stamp (fail-open), nothing to undo.
        if let Some(name) = edits.remove {
            host.remove_header(Map::Request, name);
        }
        if let Some((name, value)) = edits.set {
            host.set_header(Map::Request, name, value);
        }
        Next::Continue
    }
}

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
