//! Bench-only: a proxy-wasm HTTP filter that makes exactly the host calls
//! named in its plugin configuration and nothing else, so `scripts/bench-filter`
//! can price each host call mplb-filter makes (`VARIANTS="... probe:auth+set"`).
//! Not shipped, not a production configuration.
//!
//! Steps (the configuration, joined by `+` or `,`):
//! `time` get_current_time on the request headers; `auth` get `:authority`;
//! `endpt` get `x-lb-endpt`; `set` set `x-lb-endpt` to p0/p1/p2 (60/30/10, a
//! counter, no randomness); `setx` set `x-lb-nomatch: p0` (a header no route
//! matches); `status` get `:status` on the response headers; `rtime`
//! get_current_time on the response headers.
//! Build: `cargo build -p mplb-filter --example probe --target wasm32-wasip1 --profile wasm-release`.

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

    #[derive(Default)]
    struct Steps {
        time: bool,
        auth: bool,
        endpt: bool,
        set: bool,
        setx: bool,
        status: bool,
        rtime: bool,
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
            let has = |s: &str| text.split(['+', ',']).any(|t| t.trim() == s);
            self.steps = Rc::new(Steps {
                time: has("time"),
                auth: has("auth"),
                endpt: has("endpt"),
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

    struct ProbeHttp {
        steps: Rc<Steps>,
        n: u32,
    }

    impl Context for ProbeHttp {}
    impl HttpContext for ProbeHttp {
        fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
            let s = &self.steps;
            if s.time {
                let _ = hostcalls::get_current_time();
            }
            if s.auth {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":authority");
            }
            if s.endpt {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "x-lb-endpt");
            }
            if s.set {
                let pod = match self.n % 10 {
                    0..=5 => "p0",
                    6..=8 => "p1",
                    _ => "p2",
                };
                let _ =
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-lb-endpt", Some(pod));
            }
            if s.setx {
                let _ = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    "x-lb-nomatch",
                    Some("p0"),
                );
            }
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
            if self.steps.status {
                let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
            }
            if self.steps.rtime {
                let _ = hostcalls::get_current_time();
            }
            Action::Continue
        }
    }
}
