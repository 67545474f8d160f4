//! Fuzz `mplb_wire::topology::TopologyFile::from_json`: never panics; an
//! accepted file round-trips (the lab writes what the weight server reads).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mplb_wire::topology::TopologyFile;

fuzz_target!(|data: &[u8]| {
    mplb_fuzz::round_trip(data, |bytes| {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        TopologyFile::from_json(text).map_err(|e| e.to_string())
    })
});
