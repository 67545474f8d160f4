//! Fuzz `mplb_wire::scenario::parse` (the lab's YAML scenario files): never
//! panics, and decides the same way twice.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mplb_fuzz::deterministic(data, |bytes| {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    mplb_wire::scenario::parse(text).map_err(|e| e.to_string())
}));
