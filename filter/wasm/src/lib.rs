//! `mplb-filter`: the multiparty-lb proxy-wasm HTTP filter module (the
//! cdylib Envoy loads, `mplb_filter.wasm`).
//!
//! Role: the shim between Envoy and the filter's logic. It exports only the
//! callbacks the filter needs (Envoy skips a callback a module does not
//! export: a request costs one call, its request headers) and forwards
//! each to the VM's [`Plugin`] (`mplb-filter-core`, where every decision is
//! made) with the host calls of `mplb-proxy-abi`; it decides nothing. The
//! other module exports (`_initialize`, ABI version, VM start, memory
//! allocation) come from `mplb-proxy-abi`.
//!
//! Re-entrancy: the state is borrowed with `try_borrow_mut`; a callback that
//! arrives while another holds it (the host calling back from inside a host
//! call) is ignored, never a panic.

// The only unsafe is `#[unsafe(no_mangle)]` on the exported callbacks
// (their names are the ABI); the shim has no unsafe block.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[unsafe(no_mangle)]`: the callbacks' names are the ABI.
mod exports {
    use std::cell::RefCell;

    use mplb_filter_core::{Next, Plugin};
    use mplb_proxy_abi::ProxyHost;

    thread_local! {
        static PLUGIN: RefCell<Plugin> = const { RefCell::new(Plugin::new()) };
    }

    fn with_plugin<R>(f: impl FnOnce(&mut Plugin) -> R) -> Option<R> {
        PLUGIN.with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
    }

    /// `Continue` in the proxy-wasm `Action` enum.
    const CONTINUE: u32 = 0;
    /// `Pause` (`StopIteration`) in the proxy-wasm `Action` enum.
    const PAUSE: u32 = 1;

    /// The plugin (re)configured for root context `root`.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_configure(root: u32, _size: usize) -> u32 {
        let started = with_plugin(|p| p.configure(&ProxyHost, root));
        u32::from(started == Some(true))
    }

    /// The VM's tick.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_tick(root: u32) {
        with_plugin(|p| p.on_tick(&ProxyHost, root));
    }

    /// The answer to a call to the weight server.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_http_call_response(
        root: u32,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        with_plugin(|p| p.on_http_call_response(&ProxyHost, root, token, num_headers, body_size));
    }

    /// A request's headers: `Pause` only after the plugin answered the
    /// request itself (an admission shed); `Continue` otherwise, a
    /// re-entrant call included.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_request_headers(_id: u32, _n: usize, _eos: u32) -> u32 {
        match with_plugin(|p| p.on_request_headers(&ProxyHost)) {
            Some(Next::Pause) => PAUSE,
            Some(Next::Continue) | None => CONTINUE,
        }
    }
}
