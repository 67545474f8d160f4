//! The proxy-wasm glue (wasm32 only): the callbacks Envoy calls, written
//! against the ABI directly ([`crate::abi`]), holding the VM's [`VmFilter`]
//! and a small record per stamped request in flight.
//!
//! Only the callbacks the filter needs are exported. Envoy skips a callback
//! the module does not export, and the SDK exports all of them, so a filter
//! built on it is called seven times per request (context create, request
//! headers, response headers, response body, done, log, delete). Here a
//! request costs two: request headers, where the pod is chosen (and, for a
//! stamped request, a record keyed by its context id is made), and log, at
//! the end of the stream, where the record is counted and dropped (with, for
//! a sampled response, its latency and its `:status` from the response
//! headers, none if there was no response).
//!
//! Without `proxy_on_context_create` the filter does not learn which root
//! context a request belongs to, so a VM holds one configuration: the root
//! context configured last serves every request (a configuration update
//! configures a new root context in the same VM; it replaces the old one).
//!
//! Re-entrancy: the state is borrowed with `try_borrow_mut`; a callback that
//! arrives while another holds it (the host calling back from inside a host
//! call) is ignored, never a panic.

use std::cell::RefCell;

use rand::TryRng;

use crate::abi::{self, Buffer, Map};
use crate::config::Config;
use crate::host::{CallResponse, Host, Level, SharedError};
use crate::inflight::InFlight;
use crate::stats::{Outcome, parse_status};
use crate::vm::{Stamped, VmFilter};

/// The real host: proxy-wasm host calls.
struct ProxyHost;

impl Host for ProxyHost {
    fn now_ms(&self) -> u64 {
        abi::now_ns().map_or(0, |ns| ns / 1_000_000)
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::shared_get(key)
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        abi::shared_set(key, value, cas)
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<u32, String> {
        abi::http_call(cluster, headers, body, timeout_ms).map_err(|s| format!("status {s}"))
    }

    fn log(&self, level: Level, msg: &str) {
        abi::log(level, msg);
    }
}

/// A stamped request in flight.
struct Request {
    stamped: Stamped,
    /// When its response is observed: the requests it stands for.
    sample: u32,
    started_ns: Option<u64>,
}

/// Everything one VM holds: the configured filter (and its root context id)
/// and the stamped requests in flight.
#[derive(Default)]
struct State {
    root: u32,
    filter: Option<VmFilter>,
    requests: InFlight<Request>,
}

impl State {
    /// The filter, if `root` is the root context it was configured for.
    fn filter_of(&mut self, root: u32) -> Option<&mut VmFilter> {
        self.filter.as_mut().filter(|_| self.root == root)
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
}

unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// WASI reactor start: run static constructors (as the SDK does).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: called once by the host before any other export.
    unsafe { __wasm_call_ctors() }
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
    1
}

/// This workload's own service: the config, else the Istio workload name
/// from the environment, else from the node metadata.
fn own_service(cfg: &Config) -> Option<String> {
    if let Some(s) = &cfg.service {
        return Some(s.clone());
    }
    if let Ok(s) = std::env::var("ISTIO_META_WORKLOAD_NAME")
        && !s.is_empty()
    {
        return Some(s);
    }
    for path in [
        &["xds", "node", "metadata", "WORKLOAD_NAME"][..],
        &["node", "metadata", "WORKLOAD_NAME"][..],
    ] {
        if let Some(v) = abi::property(path)
            && let Ok(s) = String::from_utf8(v)
            && !s.is_empty()
            && !s.contains(char::is_whitespace)
        {
            return Some(s);
        }
    }
    None
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    match rand::rngs::SysRng.try_fill_bytes(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => abi::now_ns().unwrap_or(0),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(root: u32, _size: usize) -> u32 {
    let host = ProxyHost;
    let raw = abi::buffer(Buffer::PluginConfiguration, usize::MAX).unwrap_or_default();
    let cfg = match Config::parse(&raw) {
        Ok(cfg) => cfg,
        Err(e) => {
            host.log(Level::Error, &format!("mplb: refusing to start: {e}"));
            return 0;
        }
    };
    let own = own_service(&cfg);
    if own.is_none() {
        host.log(
            Level::Warn,
            "mplb: own service unknown (no `service`, ISTIO_META_WORKLOAD_NAME or node metadata); inbound requests may be stamped",
        );
    }
    let tick_ms = u32::try_from(cfg.tick_ms()).unwrap_or(u32::MAX);
    let mut vm = VmFilter::new(cfg, own, seed());
    vm.on_configure(&host);
    let stored = with_state(|s| {
        if s.filter.is_some() && s.root != root {
            host.log(
                Level::Info,
                &format!(
                    "mplb: root context {root} configured; it replaces {}",
                    s.root
                ),
            );
        }
        s.root = root;
        s.filter = Some(vm);
    });
    u32::from(stored.is_some() && abi::set_tick_period_ms(tick_ms))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_tick(root: u32) {
    with_state(|s| {
        if let Some(vm) = s.filter_of(root) {
            vm.on_tick(&ProxyHost);
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_http_call_response(
    root: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    let status = if num_headers == 0 {
        None
    } else {
        abi::header(Map::HttpCallResponse, ":status").and_then(|s| parse_status(&s))
    };
    // Oversized bodies are cut one byte past the limit so parse rejects them.
    let take = body_size.min(mplb_wire::MAX_TABLE_BYTES + 1);
    let body = abi::buffer(Buffer::HttpCallResponseBody, take).unwrap_or_default();
    let resp = CallResponse { status, body };
    with_state(|s| {
        if let Some(vm) = s.filter_of(root) {
            vm.on_call_response(&ProxyHost, token, &resp);
        }
    });
}

/// `Continue` in the proxy-wasm `Action` enum.
const CONTINUE: u32 = 0;

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(id: u32, _n: usize, _eos: u32) -> u32 {
    with_state(|s| {
        let State {
            filter, requests, ..
        } = s;
        let Some(vm) = filter.as_mut() else {
            return;
        };
        // Expiry is checked against the VM's tick clock: no clock call here.
        let now_ms = vm.clock_ms();
        // Header values as bytes: Envoy passes values that are not UTF-8
        // (obs-text). A host that is not UTF-8 is unknown; an endpoint value
        // that is not UTF-8 names no pod (so it is replaced, or stripped).
        let authority = abi::header(Map::Request, ":authority");
        let endpoint = abi::header(Map::Request, &vm.config().header);
        let authority = authority
            .as_deref()
            .and_then(|a| std::str::from_utf8(a).ok());
        let endpoint = endpoint
            .as_deref()
            .map(|e| std::str::from_utf8(e).unwrap_or(""));
        let edits = vm.on_request(now_ms, authority, endpoint);
        if let Some(name) = edits.remove {
            abi::remove_header(Map::Request, name);
        }
        if let Some((name, value)) = edits.set {
            abi::set_header(Map::Request, name, value);
        }
        if let Some(stamped) = edits.stamped {
            let started_ns = if edits.sample > 0 {
                abi::now_ns()
            } else {
                None
            };
            requests.insert(
                id,
                Request {
                    stamped,
                    sample: edits.sample,
                    started_ns,
                },
            );
        }
    });
    CONTINUE
}

/// The end of a stream (after its access log): count a stamped request's
/// outcome. Latency is from its request headers to here (sampled requests).
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_log(id: u32) {
    with_state(|s| {
        let Some(req) = s.requests.remove(id) else {
            return;
        };
        let Some(vm) = s.filter.as_mut() else {
            return;
        };
        // The status is a value the host must place in the VM: read only
        // for the sampled responses (all of them with `exact_errors`).
        let weight = vm.status_weight(req.sample);
        let status = if weight > 0 {
            abi::header(Map::Response, ":status").and_then(|v| parse_status(&v))
        } else {
            None
        };
        let latency_us = req
            .started_ns
            .and_then(|start| abi::now_ns().map(|now| now.saturating_sub(start) / 1_000));
        let outcome = Outcome {
            weight,
            status,
            latency_us,
        };
        vm.on_done(req.stamped, outcome);
    });
}
