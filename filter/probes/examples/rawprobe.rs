//! Bench-only: like `probe`, but on the filter's own ABI layer
//! (`mplb-proxy-abi`, as mplb-filter is), exporting only
//! `proxy_on_request_headers` and `proxy_on_log` besides that layer's
//! module exports, so `mplb-lab bench-filter` can price the filter's floor:
//! two callbacks and the host calls, with no logic
//! (`VARIANTS="rawprobe:auth+endpt+set+status"`).
//! Not shipped, not a production configuration.
//!
//! Steps (the plugin configuration, joined by `+`): `auth` get `:authority`;
//! `endpt` get `x-lb-endpt`; `pairs` get all request headers in one call and
//! find both in them (decoded in place); `set` replace `x-lb-endpt` with
//! p0/p1/p2 (60/30/10 by a counter); `add` add it instead (the header is
//! known absent); `status` get `:status` in the log callback. Host values
//! are placed as the filter's are (the ABI layer's scratch buffer).
//! Build: `cargo build -p mplb-filter-probes --example rawprobe --target wasm32-wasip1 --profile wasm-release`.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "wasm32")]
mod rawprobe {
    use std::cell::Cell;

    use mplb_filter_core::{Buffer, Map};
    use mplb_filter_probes::step_count;
    use mplb_proxy_abi as abi;

    const AUTH: u32 = 1;
    const ENDPT: u32 = 2;
    const PAIRS: u32 = 4;
    const SET: u32 = 8;
    const ADD: u32 = 16;
    const STATUS: u32 = 32;

    thread_local! {
        static STEPS: Cell<u32> = const { Cell::new(0) };
        static COUNT: Cell<u32> = const { Cell::new(0) };
    }

    fn steps() -> u32 {
        STEPS.with(Cell::get)
    }

    fn header_len(map: Map, name: &str) -> usize {
        abi::header(map, name).map_or(0, |v| v.len())
    }

    fn pairs_find() -> usize {
        let Some(b) = abi::header_pairs(Map::Request) else {
            return 0;
        };
        let word = |at: usize| -> usize {
            b.get(at..at + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
        };
        let n = word(0);
        let mut at = 4 + 8 * n;
        let mut found = 0;
        for i in 0..n {
            let (k, v) = (word(4 + 8 * i), word(8 + 8 * i));
            let name = b.get(at..at + k).unwrap_or_default();
            if name == b":authority" || name == b"x-lb-endpt" {
                found += 1;
            }
            at += k + 1 + v + 1;
        }
        found
    }

    /// Reads the steps named in the plugin configuration.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_configure(_root: u32, _size: usize) -> u32 {
        let raw = abi::buffer(Buffer::PluginConfiguration, usize::MAX).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        let mut s = 0;
        for (name, bit) in [
            ("auth", AUTH),
            ("endpt", ENDPT),
            ("pairs", PAIRS),
            ("set", SET),
            ("add", ADD),
            ("status", STATUS),
        ] {
            if step_count(&text, name) > 0 {
                s |= bit;
            }
        }
        STEPS.with(|c| c.set(s));
        1
    }

    /// Makes the request-side steps.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_request_headers(_id: u32, _n: usize, _eos: u32) -> u32 {
        let s = steps();
        let mut seen = 0;
        if s & AUTH != 0 {
            seen += header_len(Map::Request, ":authority");
        }
        if s & ENDPT != 0 {
            seen += header_len(Map::Request, "x-lb-endpt");
        }
        if s & PAIRS != 0 {
            seen += pairs_find();
        }
        let n = COUNT.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        let pod: &str = match n % 10 {
            0..=5 => "p0",
            6..=8 => "p1",
            _ => "p2",
        };
        if s & SET != 0 && seen < usize::MAX {
            abi::set_header(Map::Request, "x-lb-endpt", pod);
        }
        if s & ADD != 0 {
            abi::add_header(Map::Request, "x-lb-endpt", pod);
        }
        0
    }

    /// Makes the response-side step.
    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_log(_id: u32) {
        if steps() & STATUS != 0 {
            let _ = header_len(Map::Response, ":status");
        }
    }
}
