//! The proxy-wasm glue (wasm32 only): a root context per VM holding the
//! [`VmFilter`], HTTP contexts that read headers, apply the [`Edits`] and
//! report each stamped request's outcome. Host calls go through the
//! `Result`-returning `hostcalls`; failures are ignored, never unwrapped.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, Status};
use rand::TryRng;

use crate::config::Config;
use crate::host::{CallResponse, Host, Level, SharedError};
use crate::vm::{Stamped, VmFilter};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { filter: None })
    });
}}

/// The real host: proxy-wasm host calls.
struct ProxyHost;

fn now_ns() -> u128 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

impl Host for ProxyHost {
    fn now_ms(&self) -> u64 {
        (now_ns() / 1_000_000) as u64
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(v), cas)) => Some((v, cas.unwrap_or(0))),
            _ => None,
        }
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        let cas = (cas != 0).then_some(cas);
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedError::CasMismatch),
            Err(_) => Err(SharedError::Failed),
        }
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            body,
            vec![],
            Duration::from_millis(timeout_ms),
        )
        .map_err(|s| format!("{s:?}"))
    }

    fn log(&self, level: Level, msg: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let _ = hostcalls::log(level, msg);
    }
}

struct Root {
    filter: Option<Rc<RefCell<VmFilter>>>,
}

impl Root {
    fn with<F: FnOnce(&mut VmFilter)>(&self, f: F) {
        if let Some(filter) = &self.filter
            && let Ok(mut vm) = filter.try_borrow_mut()
        {
            f(&mut vm);
        }
    }
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
        vec!["xds", "node", "metadata", "WORKLOAD_NAME"],
        vec!["node", "metadata", "WORKLOAD_NAME"],
    ] {
        if let Ok(Some(v)) = hostcalls::get_property(path)
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
        Err(_) => now_ns() as u64,
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        let status = if num_headers == 0 {
            None
        } else {
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|s| s.parse::<u16>().ok())
        };
        // Oversized bodies are cut one byte past the limit so parse rejects them.
        let take = body_size.min(mplb_wire::MAX_TABLE_BYTES + 1);
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, take)
            .ok()
            .flatten()
            .unwrap_or_default();
        let resp = CallResponse { status, body };
        self.with(|vm| vm.on_call_response(&ProxyHost, token, &resp));
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let host = ProxyHost;
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let cfg = match Config::parse(&raw) {
            Ok(cfg) => cfg,
            Err(e) => {
                host.log(Level::Error, &format!("mplb: refusing to start: {e}"));
                return false;
            }
        };
        let own = own_service(&cfg);
        if own.is_none() {
            host.log(
                Level::Warn,
                "mplb: own service unknown (no `service`, ISTIO_META_WORKLOAD_NAME or node metadata); inbound requests may be stamped",
            );
        }
        let tick = Duration::from_millis(cfg.tick_ms());
        let mut vm = VmFilter::new(cfg, own, seed());
        vm.on_configure(&host);
        self.filter = Some(Rc::new(RefCell::new(vm)));
        hostcalls::set_tick_period(tick).is_ok()
    }

    fn on_tick(&mut self) {
        self.with(|vm| vm.on_tick(&ProxyHost));
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        let filter = Rc::clone(self.filter.as_ref()?);
        Some(Box::new(Request {
            filter,
            stamped: None,
            started: None,
            status: None,
            latency_us: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    filter: Rc<RefCell<VmFilter>>,
    stamped: Option<Stamped>,
    started: Option<SystemTime>,
    status: Option<u16>,
    latency_us: Option<u64>,
}

/// A header's raw value. Bytes, not `String`: Envoy passes header values
/// that are not UTF-8 (obs-text), and the SDK's `get_map_value` unwraps the
/// UTF-8 conversion, which would panic and kill the VM.
fn header(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let Ok(mut vm) = self.filter.try_borrow_mut() else {
            return Action::Continue;
        };
        // Expiry is checked against the VM's tick clock: no clock call here.
        let now_ms = vm.clock_ms();
        let authority = header(MapType::HttpRequestHeaders, ":authority");
        let endpoint = header(MapType::HttpRequestHeaders, &vm.config().header);
        // A host that is not UTF-8 is unknown; an endpoint value that is not
        // UTF-8 names no pod (so it is replaced, or stripped).
        let authority = authority
            .as_deref()
            .and_then(|a| std::str::from_utf8(a).ok());
        let endpoint = endpoint
            .as_deref()
            .map(|e| std::str::from_utf8(e).unwrap_or(""));
        let edits = vm.on_request(now_ms, authority, endpoint);
        if let Some(name) = edits.remove {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
        }
        if let Some((name, value)) = edits.set {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        }
        if edits.stamped.is_some() {
            self.stamped = edits.stamped;
            if edits.sample_latency {
                self.started = hostcalls::get_current_time().ok();
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self.stamped.is_some() {
            self.status = header(MapType::HttpResponseHeaders, ":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok());
            self.latency_us = self.started.and_then(|s| {
                hostcalls::get_current_time()
                    .ok()
                    .and_then(|t| t.duration_since(s).ok())
                    .map(|d| d.as_micros() as u64)
            });
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(stamped) = self.stamped
            && let Ok(mut vm) = self.filter.try_borrow_mut()
        {
            vm.on_done(stamped, self.status, self.latency_us);
        }
    }
}
