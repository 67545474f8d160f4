//! Fuzz `mplb_wire::HostReport::parse`: never panics; an accepted body round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mplb_wire::HostReport;

fuzz_target!(|data: &[u8]| mplb_fuzz::round_trip(data, HostReport::parse));
