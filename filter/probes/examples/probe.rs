//! Bench-only: a proxy-wasm HTTP filter that makes exactly the host calls
//! named in its plugin configuration and nothing else, so `mplb-lab bench-filter`
//! can price each host call mplb-filter makes (`VARIANTS="... probe:auth+set"`).
//! Not shipped, not a production configuration.
//!
//! Steps (the configuration, joined by `+` or `,`):
//! `time` get_current_time on the request headers; `auth` get `:authority`;
//! `endpt` get `x-lb-endpt`; `pairs` get all request headers in one call
//! (and find `:authority` and `x-lb-endpt` in them; the SDK's decoding);
//! `rawpairs` the same, decoded in place without allocating; `set` set `x-lb-endpt` to p0/p1/p2 (60/30/10, a
//! counter, no randomness); `setx` set `x-lb-nomatch: p0` (a header no route
//! matches); `status` get `:status` on the response headers; `rtime`
//! get_current_time on the response headers. `step*N` makes that call N
//! times (to price one call well above the noise of a shared machine).
//! Build: `cargo build -p mplb-filter-probes --example probe --target wasm32-wasip1 --profile wasm-release`.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "wasm32")]
mod probe {
    use std::rc::Rc;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(ProbeRoot { steps: Rc::new(Steps::default()), n: std::cell::Cell::new(0) })
        });
    }}

    /// How many times each call is made per request.
    #[derive(Default)]
    struct Steps {
        time: u32,
        auth: u32,
        endpt: u32,
        pairs: u32,
        rawpairs: u32,
        set: u32,
        setx: u32,
        status: u32,
        rtime: u32,
    }

    struct ProbeRoot {
        steps: Rc<Steps>,
        n: std::cell::Cell<u32>,
    }

    impl Context for ProbeRoot {}
    impl RootContext for ProbeRoot {
        fn on_configure(&mut self, _size: usize) -> bool {
            let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
                .ok()
                .flatten()
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&raw);
            let has = |s: &str| mplb_filter_probes::step_count(&text, s);
            self.steps = Rc::new(Steps {
                time: has("time"),
                auth: has("auth"),
                endpt: has("endpt"),
                pairs: has("pairs"),
                rawpairs: has("rawpairs"),
                set: has("set"),
                setx: has("setx"),
                status: has("status"),
                rtime: has("rtime"),
            });
            true
        }

        fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
            let n = self.n.get().wrapping_add(1);
            self.n.set(n);
            Some(Box::new(ProbeHttp {
                steps: Rc::clone(&self.steps),
                n,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> proxy_wasm::types::Status;
    }

    /// All request headers in one call, decoded in place: how many of
    /// `:authority` and `x-lb-endpt` are there.
    fn raw_pairs_find() -> usize {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a buffer it allocated in this VM (through
        // proxy_on_memory_allocate); we take ownership of it as a Vec.
        let buf = unsafe {
            if proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size)
                != proxy_wasm::types::Status::Ok
                || data.is_null()
            {
                return 0;
            }
            Vec::from_raw_parts(data, size, size)
        };
        let word = |at: usize| -> Option<usize> {
            let b = buf.get(at..at + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let Some(n) = word(0) else { return 0 };
        let mut at = 4 + n * 8;
        let mut found = 0;
        for i in 0..n {
            let (Some(kl), Some(vl)) = (word(4 + i * 8), word(8 + i * 8)) else {
                return found;
            };
            let key = buf.get(at..at + kl).unwrap_or_default();
            if key == b":authority" || key == b"x-lb-endpt" {
                found += 1;
            }
            at += kl + 1 + vl + 1;
        }
        found
    }

    struct ProbeHttp {
        steps: Rc<Steps>,
        n: u32,
    }

    impl Context for ProbeHttp {}
    impl HttpContext for ProbeHttp {
        fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
            let s = &self.steps;
            for _ in 0..s.time {
                let _ = hostcalls::get_current_time();
            }
            for _ in 0..s.auth {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":authority");
            }
            for _ in 0..s.endpt {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "x-lb-endpt");
            }
            for _ in 0..s.pairs {
                let pairs =
                    hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
                let found = pairs
                    .iter()
                    .filter(|(k, _)| k == ":authority" || k == "x-lb-endpt")
                    .count();
                std::hint::black_box(found);
            }
            for _ in 0..s.rawpairs {
                std::hint::black_box(raw_pairs_find());
            }
            for _ in 0..s.set {
                let pod = match self.n % 10 {
                    0..=5 => "p0",
                    6..=8 => "p1",
                    _ => "p2",
                };
                let _ =
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-lb-endpt", Some(pod));
            }
            for _ in 0..s.setx {
                let _ = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    "x-lb-nomatch",
                    Some("p0"),
                );
            }
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
            for _ in 0..self.steps.status {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
            }
            for _ in 0..self.steps.rtime {
                let _ = hostcalls::get_current_time();
            }
            Action::Continue
        }
    }
}
