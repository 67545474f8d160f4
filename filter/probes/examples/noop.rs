//! A proxy-wasm HTTP filter that does nothing: the baseline of
//! `mplb-lab bench-filter` (VM, context creation and callbacks, no work).
//! Build: `cargo build -p mplb-filter-probes --example noop --target wasm32-wasip1 --profile wasm-release`.
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod noop {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, LogLevel};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Warn);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
    }}

    struct NoopRoot;
    impl Context for NoopRoot {}
    impl RootContext for NoopRoot {
        fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(NoopHttp))
        }
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct NoopHttp;
    impl Context for NoopHttp {}
    impl HttpContext for NoopHttp {
        fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
            Action::Continue
        }
    }
}
