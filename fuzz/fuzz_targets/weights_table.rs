//! Fuzz `mplb_wire::WeightsTable::parse`: never panics; an accepted body round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mplb_wire::WeightsTable;

fuzz_target!(|data: &[u8]| mplb_fuzz::round_trip(data, WeightsTable::parse));
