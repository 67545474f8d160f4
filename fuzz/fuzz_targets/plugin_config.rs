//! Fuzz `mplb_wire::PluginConfig::parse`: never panics, and decides the same
//! way twice (the config has no JSON encoding of its own to round-trip).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mplb_wire::PluginConfig;

fuzz_target!(|data: &[u8]| mplb_fuzz::deterministic(data, PluginConfig::parse));
